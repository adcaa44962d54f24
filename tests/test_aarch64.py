"""edge-reid on aarch64 (every Jetson, Raspberry Pis, Arm laptops and cloud machines), checked from real
``/proc/cpuinfo`` texts on this x86 machine: the CPU's name and instruction sets (doctor, bench, the keys of
``--backend auto``'s measured choice) and which CPU backend precisions Arm is offered.

Where each text comes from (blocks cut to the first one or two processors; the rest repeat them):

- Jetson Orin: the ``Features`` line as NVIDIA's L4T 35/36 kernel prints it on an AGX Orin (with ``paca pacg``),
  implementer, part, variant and revision as in the "Jetson Orin" entry of Marcin Juszkiewicz's AArch64 SoC
  features table (github.com/hrw/arm-socs-table, data/socs.yml). No public verbatim dump was found, so this text is
  assembled from those two; BogoMIPS (62.50, the 31.25 MHz Tegra timer) is not read by edge-reid.
- Jetson AGX Xavier (L4T 32, kernel 4.9, whose arm64 kernel still prints ``model name``): hrw/arm-socs-table
  cpuinfo-data/tegra-xavier-agx, verbatim.
- Jetson Nano (kernel 5.15): hrw/arm-socs-table cpuinfo-data/nvidia-jetson-nano, verbatim.
- Raspberry Pi 5 (kernel 6.1): hrw/arm-socs-table cpuinfo-data/raspberry-pi5, its ``Serial`` line left out.
- NVIDIA GB10 (DGX Spark class, Cortex-X925 + Cortex-A725, Armv9.2 like Jetson Thor's Neoverse V3AE):
  hrw/arm-socs-table cpuinfo-data/nvidia-gb10 (processors 0 and 5), verbatim.
- x86: an AMD EPYC cut down to the lines edge-reid reads.

Core names: the Linux kernel's arch/arm64/include/asm/cputype.h (0x41/0xd42 Cortex-A78AE, 0x4e/0x004 Carmel,
0x41/0xd83 Neoverse V3AE, ...).
"""

import platform

import pytest

from edge_reid import cpu
from edge_reid.cpu import cpu_isa_flags, cpu_model

ORIN = """\
processor	: 0
BogoMIPS	: 62.50
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm paca pacg
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd42
CPU revision	: 1

processor	: 1
BogoMIPS	: 62.50
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp uscat ilrcpc flagm paca pacg
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd42
CPU revision	: 1
"""

XAVIER = """\
processor	: 0
model name	: ARMv8 Processor rev 0 (v8l)
BogoMIPS	: 62.50
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm dcpop
CPU implementer	: 0x4e
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0x004
CPU revision	: 0
MTS version	: 55637613

processor	: 1
model name	: ARMv8 Processor rev 0 (v8l)
BogoMIPS	: 62.50
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm dcpop
CPU implementer	: 0x4e
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0x004
CPU revision	: 0
MTS version	: 55637613
"""

NANO = """\
processor	: 0
BogoMIPS	: 38.40
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x1
CPU part	: 0xd07
CPU revision	: 1

processor	: 1
BogoMIPS	: 38.40
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x1
CPU part	: 0xd07
CPU revision	: 1
"""

RASPBERRY_PI_5 = """\
processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x4
CPU part	: 0xd0b
CPU revision	: 1

Hardware	: BCM2835
Revision	: d04170
Model		: Raspberry Pi 5 Model B Rev 1.0
"""

GB10_FEATURES = (
    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop sha3 sm3 sm4 "
    "asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm sb paca pacg dcpodp sve2 sveaes svepmull svebitperm svesha3 "
    "svesm4 flagm2 frint svei8mm svebf16 i8mm bf16 dgh bti ecv afp wfxt"
)
GB10 = f"""\
processor	: 0
BogoMIPS	: 2000.00
Features	: {GB10_FEATURES}
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd87
CPU revision	: 1

processor	: 5
BogoMIPS	: 2000.00
Features	: {GB10_FEATURES}
CPU implementer	: 0x41
CPU architecture: 8
CPU variant	: 0x0
CPU part	: 0xd85
CPU revision	: 1
"""

X86 = """\
processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7B13
flags		: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext ssbd ibrs ibpb stibp vmmcall fsgsbase bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr rdpru arat npt nrip_save umip vaes vpclmulqdq rdpid fsrm
"""

AGX_ORIN = "NVIDIA Jetson AGX Orin Developer Kit"


@pytest.mark.parametrize(
    ("text", "board", "model", "flags"),
    [
        (ORIN, AGX_ORIN, "NVIDIA Jetson AGX Orin Developer Kit, Arm Cortex-A78AE", ["asimd", "asimdhp", "asimddp"]),
        (ORIN, "", "Arm Cortex-A78AE", ["asimd", "asimdhp", "asimddp"]),  # in a container that masks /sys/firmware
        (XAVIER, "", "NVIDIA Carmel", ["asimd", "asimdhp"]),  # its arm64 model name, "ARMv8 Processor rev 0 (v8l)", names no core
        (NANO, "", "Arm Cortex-A57", ["asimd"]),
        (RASPBERRY_PI_5, "", "Raspberry Pi 5 Model B Rev 1.0, Arm Cortex-A76", ["asimd", "asimdhp", "asimddp"]),
        (GB10, "", "Arm Cortex-A725, Arm Cortex-X925", ["asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2"]),
        (X86, "", "AMD EPYC 7B13", ["avx2", "fma"]),
    ],
    ids=["orin", "orin-in-a-container", "xavier", "nano", "raspberry-pi-5", "gb10-big-little", "x86"],
)
def test_cpu_model_and_flags_of_real_cpuinfo_texts(text, board, model, flags):
    assert cpu_model(text, board=board) == model
    assert cpu_isa_flags(text) == flags


def test_arm_cores_names_the_jetson_parts_and_numbers_the_others():
    arm_cores = cpu.arm_cores
    thor = "CPU implementer\t: 0x41\nCPU part\t: 0xd83\n"  # Jetson Thor's core (no public dump: the kernel's ids)
    assert arm_cores(thor) == ["Arm Neoverse V3AE"]
    assert arm_cores("CPU implementer\t: 0x41\nCPU part\t: 0xd8e\n") == ["Arm part 0xd8e"]
    assert arm_cores("CPU implementer\t: 0x99\nCPU part\t: 0x001\n") == ["implementer 0x99 part 0x001"]
    assert arm_cores(X86) == [] and arm_cores("") == []
    assert arm_cores("CPU implementer\t: ?\nCPU part\t: 0xd42\n") == [], "an unreadable implementer names nothing"
    stale = "processor\t: 0\nCPU implementer\t: 0x4e\nCPU part\t: 0x004\nprocessor\t: 1\nCPU part\t: 0xd42\n"
    assert arm_cores(stale) == ["NVIDIA Carmel"], "a core without its implementer line takes none from the core before"


@pytest.fixture
def on_a_jetson(monkeypatch, tmp_path):
    """This process sees a Jetson: /proc/cpuinfo, the device tree's board and ``platform.machine()``.
    Returns ``use(cpuinfo_text, board)`` to switch between Jetsons."""
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(cpu, "PROC_SELF_CGROUP", tmp_path / "no-cgroups")

    def use(text: str, board: str) -> None:
        (tmp_path / "cpuinfo").write_text(text)
        (tmp_path / "model").write_bytes(board.encode() + b"\0")
        monkeypatch.setattr(cpu, "CPUINFO", tmp_path / "cpuinfo")
        monkeypatch.setattr(cpu, "DEVICE_TREE_MODEL", tmp_path / "model")

    return use


def test_doctor_and_bench_name_a_jetson_cpu(on_a_jetson):
    from edge_reid.bench.environment import environment
    from edge_reid.doctor import cpu_item

    on_a_jetson(ORIN, AGX_ORIN)
    line = cpu_item().value
    assert line.startswith("NVIDIA Jetson AGX Orin Developer Kit, Arm Cortex-A78AE (asimd, asimdhp, asimddp): "), line
    env = environment()
    assert env["cpu"] == "NVIDIA Jetson AGX Orin Developer Kit, Arm Cortex-A78AE"
    assert env["cpu_flags"] == ["asimd", "asimdhp", "asimddp"]


def test_auto_choice_keys_differ_between_jetsons(on_a_jetson, monkeypatch, tmp_path):
    """A cache folder copied from one Jetson to another (an image cloned to a fleet) must not hand the
    backend measured on one to the other, even where both have the same number of usable cores."""
    from edge_reid.backends.cpu_choice import choice_key

    model = tmp_path / "model.onnx"
    model.write_bytes(b"the same model bytes")
    monkeypatch.setattr(cpu, "usable_cpu_count", lambda *args: 8)
    keys = {}
    for name, text, board in [
        ("agx-orin", ORIN, AGX_ORIN),
        ("orin-nx", ORIN, "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"),  # same cores, another board
        ("orin-in-a-container", ORIN, ""),
        ("xavier", XAVIER, ""),
        ("nano", NANO, "NVIDIA Jetson Nano Developer Kit"),
    ]:
        on_a_jetson(text, board)
        keys[name] = choice_key("embedding", model, "batch 8")
    assert len(set(keys.values())) == len(keys), keys


def test_openvino_on_arm_auto_passes_over_it_and_int8_is_not_refused_for_saturation(monkeypatch):
    """OpenVINO has aarch64 wheels and runs on Arm CPUs, but edge-reid does not install it there and ``auto``
    uses it only on x86-64 (README, backends table). Its VNNI/AMX check is for x86 only: Arm's 8-bit dot
    products add up in 32 bits, and OpenVINO runs quantized models on Arm in floating point (its CPU device
    documentation, "simulation mode"), so neither saturates 16-bit sums."""
    from edge_reid.backends import openvino

    monkeypatch.setattr(openvino, "availability", lambda: (True, "OpenVINO 2025.4.0"))
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    ok, why = openvino.auto_availability()
    assert not ok and "only on x86-64" in why and "aarch64" in why
    for text in (ORIN, XAVIER, NANO, GB10):
        assert openvino.int8_saturation(cpu_isa_flags(text)) == ""
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert openvino.auto_availability()[0]
    assert "no VNNI or AMX" in openvino.int8_saturation(cpu_isa_flags(X86))


@pytest.mark.parametrize(
    ("capabilities", "available"),
    [
        # OpenVINO's CPU plugin on Arm lists FP16 where the core has fp16 arithmetic (asimdhp: Orin, Xavier, Pi 5),
        # never BF16 (its bf16 kernels are x86 only), and INT8 always.
        (["FP32", "FP16", "INT8", "BIN", "EXPORT_IMPORT"], {"fp32", "fp16", "int8"}),
        (["FP32", "INT8", "BIN", "EXPORT_IMPORT"], {"fp32", "int8"}),  # Cortex-A57 (Nano): no asimdhp
    ],
    ids=["asimdhp", "no-asimdhp"],
)
def test_openvino_precisions_on_arm_follow_the_plugins_capabilities(monkeypatch, capabilities, available):
    from edge_reid.backends import openvino

    class Core:
        def get_property(self, device, name):
            assert (device, name) == ("CPU", "OPTIMIZATION_CAPABILITIES")
            return capabilities

    monkeypatch.setattr(openvino, "_core", lambda: Core())
    offered = {precision for precision in ("fp32", "bf16", "fp16", "int8") if not openvino.precision_unavailable(precision)}
    assert offered == available
    assert "cannot compute in BF16" in openvino.precision_unavailable("bf16")
