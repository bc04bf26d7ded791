"""Test-only callback: writes every task result of a play to a JSON file.

Integration tests read module results from this file instead of parsing
ansible-playbook's human output.  The file path comes from
VMCRYPT_TEST_RESULTS_FILE.
"""
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: record_results
type: aggregate
short_description: record task results for the test suite
description: Writes each task's result, keyed by task name, to VMCRYPT_TEST_RESULTS_FILE.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "record_results"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super(CallbackModule, self).__init__()
        self._results = {}

    def _record(self, result, status):
        payload = dict(result._result)
        payload["_status"] = status
        self._results[result._task.get_name()] = payload

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("VMCRYPT_TEST_RESULTS_FILE")
        if path:
            with open(path, "w") as handle:
                json.dump(self._results, handle, default=str)
