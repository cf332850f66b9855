import os
import platform

import pytest

from keras_deblur import process_memory
from keras_deblur.process_memory import SYSTEM_ALLOCATOR_ENV, use_system_allocator


def test_use_system_allocator_sets_the_switch_and_keeps_a_users_value(monkeypatch):
    monkeypatch.delenv(SYSTEM_ALLOCATOR_ENV, raising=False)
    use_system_allocator()
    assert os.environ[SYSTEM_ALLOCATOR_ENV] == "1"
    monkeypatch.setenv(SYSTEM_ALLOCATOR_ENV, "0")
    use_system_allocator()
    assert os.environ[SYSTEM_ALLOCATOR_ENV] == "0"


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_release_freed_memory_trims_glibcs_heap():
    assert process_memory.release_freed_memory() is True


def test_release_freed_memory_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(process_memory, "_MALLOC_TRIM", None)
    assert process_memory.release_freed_memory() is False
