/*
 * Stand-in for the C entry points that TensorRT's Python bindings (tensorrt_bindings/tensorrt.so)
 * link against, so that the REAL bindings import on a machine without TensorRT's libraries or a GPU.
 *
 * Built by tests/real_bindings.py as libnvinfer.so.<major> (with that soname); libnvonnxparser,
 * libnvparsers and libnvinfer_plugin are built empty, so every symbol resolves here.
 *
 * Every factory returns NULL, as the real libnvinfer does when CUDA cannot start: the bindings then
 * raise "TypeError: pybind11::init(): factory function returned nullptr". With
 * LOG_CUDA_INIT_FAILURE defined, the two factories first log, through the caller's ILogger, the
 * warning TensorRT logs in that case (text as reported in NVIDIA/TensorRT#2913). The ILogger vtable
 * layout (log() in slot 0) holds for TensorRT 8.x and 10.x; it is not used for 11.x.
 */
#include <stddef.h>

typedef void (*log_fn)(void *self, int severity, const char *msg);

#ifdef LOG_CUDA_INIT_FAILURE
static const char CUDA_INIT_FAILURE[] =
    "CUDA initialization failure with error: 35. Please check your CUDA installation: "
    "http://docs.nvidia.com/cuda/cuda-installation-guide-linux/index.html";
static void log_cuda_failure(void *logger) {
    if (logger) {
        log_fn *vtable = *(log_fn **)logger;
        vtable[0](logger, 2 /* Severity::kWARNING */, CUDA_INIT_FAILURE);
    }
}
#else
static void log_cuda_failure(void *logger) { (void)logger; }
#endif

void *createInferBuilder_INTERNAL(void *logger, int version) { (void)version; log_cuda_failure(logger); return NULL; }
void *createInferRuntime_INTERNAL(void *logger, int version) { (void)version; log_cuda_failure(logger); return NULL; }
void *createInferRefitter_INTERNAL(void *engine, void *logger, int version) { (void)engine; (void)logger; (void)version; return NULL; }
void *getPluginRegistry(void) { return NULL; }
void *getBuilderPluginRegistry(int capability) { (void)capability; return NULL; }
int initLibNvInferPlugins(void *logger, const char *name_space) { (void)logger; (void)name_space; return 0; }
void *createNvOnnxParser_INTERNAL(void *network, void *logger, int version) { (void)network; (void)logger; (void)version; return NULL; }
void *createNvOnnxParserRefitter_INTERNAL(void *refitter, void *logger, int version) { (void)refitter; (void)logger; (void)version; return NULL; }
int getNvOnnxParserVersion(void) { return 0; }

/* TensorRT 8.x only: the UFF and Caffe parsers (C++ symbols, given by their mangled names). */
void *_ZN11nvuffparser15createUffParserEv(void) { return NULL; }
void _ZN11nvuffparser8FieldMapC1EPKcPKvNS_9FieldTypeEi(void *self, const char *name, const void *data, int type, int length) {
    (void)self; (void)name; (void)data; (void)type; (void)length;
}
void *_ZN14nvcaffeparser117createCaffeParserEv(void) { return NULL; }
void _ZN14nvcaffeparser123shutdownProtobufLibraryEv(void) {}
