# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""vSphere faults as one line a user can act on, whether a task reported them or a call raised them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Fault attributes that name the managed object the fault is about (NoPermission.object,
# InvalidState has none, FileFault.file, InvalidArgument.invalidProperty, ...).
_SUBJECT_ATTRIBUTES = ("object", "entity", "obj", "file", "invalidProperty", "privilegeId")


def fault_message(fault):
    """One line that says what a vSphere fault means."""
    message = getattr(fault, "msg", None) or getattr(fault, "localizedMessage", None)
    if not message:
        for entry in getattr(fault, "faultMessage", None) or []:
            if entry.message:
                message = entry.message
                break
    name = type(fault).__name__.split(".")[-1]
    return "%s: %s" % (name, " ".join(message.split())) if message else name


def _subject(fault):
    parts = []
    for attribute in _SUBJECT_ATTRIBUTES:
        value = getattr(fault, attribute, None)
        if value is None or (isinstance(value, str) and not value):
            continue
        parts.append("%s %s" % (attribute, getattr(value, "_moId", value)))
    return ", ".join(parts)


def describe_fault(fault):
    """fault_message plus the object it names, for a fault raised by a call rather than reported by a task."""
    subject = _subject(fault)
    message = fault_message(fault)
    return "%s (%s)" % (message, subject) if subject and subject not in message else message
