"""Issue 9, items 12 and 14: the progress file never writes through a planted link, and bad options are one line."""
import json
import os

import pytest

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import InvalidArgumentError
from ansible_collections.vmcrypt.backup.plugins.module_utils.transfer.progress import ProgressFile
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_export import ExportOptions
from ansible_collections.vmcrypt.backup.plugins.module_utils.workflows.disk_import import ImportOptions


def test_progress_file_temporary_name_is_never_followed(tmp_path):
    path = tmp_path / "progress.json"
    victim = tmp_path / "victim"
    victim.write_text("precious")
    for guess in ("%s.%d.tmp" % (path, os.getpid()), "%s.tmp" % path):
        os.symlink(str(victim), guess)
    progress = ProgressFile(str(path), interval=0.0)
    disk = progress.start_disk("2000", 10)
    progress.advance(disk, 10)
    progress.finish_disk(disk)
    assert victim.read_text() == "precious"
    assert json.loads(path.read_text())["disks"][0]["state"] == "done"
    assert [name for name in os.listdir(str(tmp_path)) if name.endswith(".tmp") and not os.path.islink(
        str(tmp_path / name))] == []


def test_progress_file_in_a_missing_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        ProgressFile(str(tmp_path / "missing" / "progress.json"))


@pytest.mark.parametrize("options", [ExportOptions, ImportOptions])
@pytest.mark.parametrize("value", [-1, 2.5, "3", True])
def test_max_retries_must_be_a_whole_number_at_least_zero(options, value):
    arguments = {"backup_id": "20200101T000000Z-00000000"} if options is ImportOptions else {}
    with pytest.raises(InvalidArgumentError, match="max_retries"):
        options(max_retries=value, **arguments)
