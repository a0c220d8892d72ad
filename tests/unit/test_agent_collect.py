"""Inventory collection: the report of this very machine, and each section against fixtures."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from itops.agent import collect

ROOT = Path(__file__).resolve().parents[2]
REPORT_KEYS = {"schema", "agent_version", "collected_at", "hostname", "fqdn", "os", "boot_time", "hardware",
               "cpu", "memory", "disks", "network", "users", "last_user", "battery", "software"}


@pytest.fixture(scope="module")
def report():
    return collect.collect_report()


def test_the_report_describes_this_machine(report):
    assert set(report) == REPORT_KEYS
    assert report["hostname"] == socket.gethostname()
    assert report["memory"]["total_bytes"] == psutil.virtual_memory().total
    assert report["disks"] and all(disk["total_bytes"] > 0 for disk in report["disks"])
    assert report["cpu"]["cores_logical"] == psutil.cpu_count()
    assert set(report["os"]) == {"system", "name", "version", "kernel", "arch"}
    assert set(report["hardware"]) == {"manufacturer", "model", "serial"}
    assert json.loads(json.dumps(report)) == report


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs a dpkg-based system")
def test_software_lists_what_dpkg_says_is_installed(report):
    shown = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Version}", "bash"],
                           capture_output=True, text=True, check=True).stdout
    software = report["software"]
    assert (software["status"], software["manager"], software["detail"]) == ("ok", "dpkg", None)
    assert tuple(shown.split("\t")) in {(p["name"], p["version"]) for p in software["packages"]}


def test_importing_the_agent_does_not_import_flask():
    subprocess.run([sys.executable, "-c", "import itops.agent.__main__, sys; assert 'flask' not in sys.modules"],
                   cwd=ROOT, check=True)


def test_limits_cut_strings_and_capped_lists():
    oversized = {
        "hostname": "h" * 300,
        "disks": [{"device": f"/dev/sd{n}"} for n in range(70)],
        "network": [{"name": "x" * 300, "addresses": [f"10.0.0.{n}" for n in range(40)]} for _ in range(70)],
        "users": [{"name": f"u{n}"} for n in range(65)],
        "software": {"packages": [{"name": "p"}] * 20_001, "detail": "e" * 1000},
        "schema": 1,
    }
    limited = collect.enforce_limits(oversized)
    assert len(limited["hostname"]) == 255 and len(limited["software"]["detail"]) == 255
    assert len(limited["disks"]) == 64 and limited["disks"][-1]["device"] == "/dev/sd63"
    assert len(limited["network"]) == 64 and len(limited["network"][0]["addresses"]) == 32
    assert len(limited["network"][0]["name"]) == 255
    assert len(limited["users"]) == 64 and len(limited["software"]["packages"]) == 20_000
    assert limited["schema"] == 1 and len(oversized["disks"]) == 70  # the input is left alone


@pytest.mark.parametrize("placeholder", ["To be filled by O.E.M.", "Default string", "None", "", "0000000", "  "])
def test_dmi_placeholders_are_unknown(tmp_path, placeholder):
    (tmp_path / "sys_vendor").write_text("LENOVO\n")
    (tmp_path / "product_name").write_text(placeholder + "\n")
    (tmp_path / "product_serial").write_text(placeholder + "\n")
    assert collect.hardware_info(tmp_path) == {"manufacturer": "LENOVO", "model": None, "serial": None}


def test_unreadable_dmi_values_are_unknown(tmp_path):
    (tmp_path / "product_name").write_text("20XW0055GE\n")
    (tmp_path / "product_serial").mkdir()  # reading raises, like the root-only file does for users
    assert collect.hardware_info(tmp_path) == {"manufacturer": None, "model": "20XW0055GE", "serial": None}
    assert collect.hardware_info(tmp_path / "absent") == {"manufacturer": None, "model": None, "serial": None}


def _runner(**outcomes):
    """A command runner answering per program: an exception to raise, or (returncode, stdout, stderr)."""
    def run(argv):
        outcome = outcomes.get(argv[0].replace("-", "_"), FileNotFoundError(argv[0]))
        if isinstance(outcome, BaseException):
            raise outcome
        return subprocess.CompletedProcess(argv, *outcome)
    return run


def test_no_package_manager_is_unsupported():
    software = collect.software_info(_runner())
    assert software["status"] == "unsupported" and software["manager"] is None
    assert software["packages"] == [] and "dpkg-query or rpm" in software["detail"]


def test_a_failing_package_manager_is_an_error_with_its_message():
    software = collect.software_info(_runner(dpkg_query=(2, "", "  dpkg-query: error: database is locked\n")))
    assert software == {"status": "error", "manager": "dpkg", "packages": [],
                        "detail": "dpkg-query: error: database is locked"}
    timed_out = collect.software_info(_runner(dpkg_query=subprocess.TimeoutExpired("dpkg-query", 120)))
    assert timed_out["status"] == "error" and "120 s" in timed_out["detail"]


def test_dpkg_lists_only_packages_on_disk():
    listing = "installed\tzsh\t5.9-4\tamd64\nconfig-files\told-tool\t1.0\tamd64\ninstalled\tbash\t5.2\tamd64\n"
    software = collect.software_info(_runner(dpkg_query=(0, listing, "")))
    assert software["packages"] == [{"name": "bash", "version": "5.2", "arch": "amd64"},
                                    {"name": "zsh", "version": "5.9-4", "arch": "amd64"}]


def test_rpm_is_used_without_dpkg():
    listing = "bash\t5.1.8-9.el9\tx86_64\ngpg-pubkey\tfd431d51-4ae0493b\t(none)\n"
    software = collect.software_info(_runner(rpm=(0, listing, "")))
    assert (software["status"], software["manager"]) == ("ok", "rpm")
    assert software["packages"] == [{"name": "bash", "version": "5.1.8-9.el9", "arch": "x86_64"}]


def _addr(family, address):
    return SimpleNamespace(family=family, address=address)


def test_network_keeps_real_interfaces_only():
    interfaces = collect.network_info({
        "lo": [_addr(socket.AF_INET, "127.0.0.1"), _addr(socket.AF_INET6, "::1"),
               _addr(psutil.AF_LINK, "00:00:00:00:00:00")],
        "eth0": [_addr(socket.AF_INET, "192.0.2.10"), _addr(socket.AF_INET6, "fe80::1%eth0"),
                 _addr(psutil.AF_LINK, "AA-BB-CC-DD-EE-FF")],
        "wg0": [_addr(socket.AF_INET, "10.8.0.2")],
        "dummy0": [_addr(psutil.AF_LINK, "00:00:00:00:00:00")],
    })
    assert interfaces == [
        {"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "addresses": ["192.0.2.10", "fe80::1"]},
        {"name": "wg0", "mac": None, "addresses": ["10.8.0.2"]},
    ]


def test_disks_skip_pseudo_mounts_and_unreadable_ones():
    def part(device, mountpoint, fstype="ext4"):
        return SimpleNamespace(device=device, mountpoint=mountpoint, fstype=fstype)

    def usage(mountpoint):
        if mountpoint == "/secret":
            raise PermissionError(mountpoint)
        return SimpleNamespace(total=100, used=40)

    disks = collect.disks_info([part("/dev/sda1", "/"), part("/dev/loop3", "/snap/core/1", "squashfs"),
                                part("/dev/sdb1", "/secret"), part("/dev/sdc1", "/data", "xfs")], usage)
    assert [(d["device"], d["mountpoint"], d["fstype"], d["used_bytes"]) for d in disks] == [
        ("/dev/sda1", "/", "ext4", 40), ("/dev/sdc1", "/data", "xfs", 40)]


def test_users_are_latest_first_and_name_the_last_user():
    sessions = [SimpleNamespace(name="eve", terminal="tty2", host="", started=1_700_000_000.0),
                SimpleNamespace(name="bob", terminal=None, host="192.0.2.7", started=1_700_003_600.0)]
    users = collect.users_info(sessions)
    assert [u["name"] for u in users] == ["bob", "eve"]
    assert users[1] == {"name": "eve", "terminal": "tty2", "host": None, "started": "2023-11-14T22:13:20+00:00"}
    assert collect.last_user(sessions) == "bob" and collect.last_user([]) is None


def test_battery_unknown_values_are_null():
    on_mains = SimpleNamespace(percent=81, power_plugged=True, secsleft=psutil.POWER_TIME_UNLIMITED)
    assert collect.battery_info(lambda: on_mains) == {"percent": 81.0, "plugged": True, "seconds_left": None}
    draining = SimpleNamespace(percent=50.5, power_plugged=False, secsleft=5400)
    assert collect.battery_info(lambda: draining)["seconds_left"] == 5400
    assert collect.battery_info(lambda: None) is None


def test_small_sections_never_invent_values(tmp_path):
    assert collect.fqdn(lambda: "build-07") is None and collect.fqdn(lambda: "localhost.localdomain") is None
    assert collect.fqdn(lambda: "build-07.corp.example") == "build-07.corp.example"
    arch = collect.os_info("Linux", {"NAME": "Arch Linux", "BUILD_ID": "rolling"})
    assert (arch["name"], arch["version"]) == ("Arch Linux", None)
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Intel(R) Core(TM) i7-1165G7\n")
    assert collect.cpu_model(cpuinfo, "Linux") == "Intel(R) Core(TM) i7-1165G7"
    cpuinfo.write_text("processor\t: 0\nBogoMIPS\t: 48.00\n")
    assert collect.cpu_model(cpuinfo, "Linux") is None
    assert collect.cpu_frequency(None) is None
    assert collect.cpu_frequency(SimpleNamespace(current=2596.144, min=0.0, max=0.0)) == 2596.1
    assert collect.cpu_frequency(SimpleNamespace(current=1200.0, min=400.0, max=4700.0)) == 4700.0
