"""Transparent huge pages: the tunable, the opt-out, and the restart."""

import os
import platform
import subprocess
import sys

from snn_sparse.platform import hugepages


def test_tunables_adds_hugetlb_and_keeps_other_tunables():
  assert hugepages.tunables({}) == "glibc.malloc.hugetlb=1"
  assert hugepages.tunables({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}) \
      == "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"


def test_tunables_respects_the_user_and_the_opt_out():
  # A value the user set, even 0, stands; SNN_SPARSE_HUGEPAGES=0 opts out.
  assert hugepages.tunables({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) \
      is None
  assert hugepages.tunables({"SNN_SPARSE_HUGEPAGES": "0"}) is None


def test_status():
  assert hugepages.status({}) == "system"
  assert hugepages.status(
      {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2:glibc.malloc.hugetlb=1"}
  ) == "hugepages"
  assert hugepages.status({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}) \
      == "system"


def test_thp_available_reads_the_kernel_mode(tmp_path):
  mode = tmp_path / "enabled"
  mode.write_text("always [madvise] never\n")
  assert hugepages._thp_available(str(mode))
  mode.write_text("always madvise [never]\n")
  assert not hugepages._thp_available(str(mode))
  assert not hugepages._thp_available(str(tmp_path / "missing"))


def test_reexec_restarts_once_with_the_tunable():
  script = ("import os; from snn_sparse.platform import hugepages; "
            "print('start', flush=True); hugepages.reexec(); "
            "print(os.environ.get('GLIBC_TUNABLES', ''))")
  env = {k: v for k, v in os.environ.items()
         if k not in ("GLIBC_TUNABLES", "SNN_SPARSE_HUGEPAGES")}
  out = subprocess.run([sys.executable, "-c", script], env=env,
                       capture_output=True, text=True, timeout=60,
                       check=True).stdout.split()
  applies = (sys.platform == "linux" and platform.libc_ver()[0] == "glibc"
             and hugepages._thp_available())
  if applies:  # started twice, the second time with the tunable
    assert out == ["start", "start", "glibc.malloc.hugetlb=1"]
  else:
    assert out == ["start"]
  env["SNN_SPARSE_HUGEPAGES"] = "0"
  out = subprocess.run([sys.executable, "-c", script], env=env,
                       capture_output=True, text=True, timeout=60,
                       check=True).stdout.split()
  assert out == ["start"]
