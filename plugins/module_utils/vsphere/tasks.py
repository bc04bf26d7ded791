# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wait for a vSphere task with a deadline and report its fault readably."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import time

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import TaskError
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.faults import fault_message
from ansible_collections.vmcrypt.backup.plugins.module_utils.vsphere.properties import retrieve_one

FIRST_POLL_SECONDS = 0.1
LONGEST_POLL_SECONDS = 2.0


def wait_for_task(client, task, description, timeout=3600, sleep=time.sleep, clock=time.monotonic):
    """Return the task's result, or raise TaskError when it fails or times out.

    Polls info.state with a growing, jittered interval so many parallel
    waits do not hammer vCenter in step.
    """
    deadline = clock() + timeout
    delay = FIRST_POLL_SECONDS
    while True:
        info = retrieve_one(client, task, ["info.state", "info.error", "info.result"])
        state = info.get("info.state")
        if state == "success":
            return info.get("info.result")
        if state == "error":
            raise TaskError("%s failed: %s" % (description, fault_message(info.get("info.error"))))
        if clock() >= deadline:
            raise TaskError("%s did not finish within %d seconds (task %s still %s)"
                            % (description, timeout, task._moId, state))
        sleep(min(delay, max(0.0, deadline - clock())) * random.uniform(0.8, 1.2))
        delay = min(delay * 2, LONGEST_POLL_SECONDS)
