# -*- coding: utf-8 -*-
# Copyright: vmcrypt.backup contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Storage policies (SPBM) over the vCenter session already open.

The PBM endpoint accepts vCenter's session cookie, so no second login and no
second copy of the password.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyVmomi import pbm, SoapStubAdapter, VmomiSupport, vmodl
except ImportError:  # the module wrapper reports the missing library
    pass

from ansible_collections.vmcrypt.backup.plugins.module_utils.errors import AmbiguousError, NotFoundError, VmcryptError

PBM_PATH = "/pbm/sdk"


def vm_home_ref(server_uuid, vm_moid):
    return pbm.ServerObjectRef(objectType="virtualMachine", key=vm_moid, serverUuid=server_uuid)


def disk_ref(server_uuid, vm_moid, device_key):
    # vSphere names a disk for SPBM as "<vm moid>:<device key>".
    return pbm.ServerObjectRef(objectType="virtualDiskId", key="%s:%d" % (vm_moid, device_key),
                               serverUuid=server_uuid)


class PbmClient:
    """Profile look-ups and associations for VM homes and disks."""

    def __init__(self, client):
        version = VmomiSupport.newestVersions.GetName("pbm")
        stub = SoapStubAdapter(host=client.hostname, port=client.port, path=PBM_PATH, version=version,
                               sslContext=client.ssl_context, poolSize=0,
                               requestContext={"vcSessionCookie": client.session_cookie})
        self.server_uuid = client.content.about.instanceUuid
        self.endpoint = "https://%s:%d%s" % (client.hostname, client.port, PBM_PATH)
        try:
            self.content = pbm.ServiceInstance("ServiceInstance", stub).RetrieveContent()
        except vmodl.MethodFault as fault:
            raise VmcryptError("the storage policy service at %s refused the session: %s"
                               % (self.endpoint, fault.msg or type(fault).__name__))
        except Exception as error:  # pyVmomi raises HTTPException("404 Not Found"), socket and TLS errors
            raise VmcryptError("the storage policy service at %s answered %s: %s"
                               % (self.endpoint, type(error).__name__, " ".join(str(error).split()) or "nothing"))
        self._names = {}

    def _profile_manager(self):
        return self.content.profileManager

    def profiles(self, profile_ids):
        """{profile id: name} for the ids that exist (absent ids are left out)."""
        wanted = [profile_id for profile_id in set(profile_ids) if profile_id not in self._names]
        if wanted:
            refs = [pbm.profile.ProfileId(uniqueId=profile_id) for profile_id in wanted]
            try:
                found = self._profile_manager().PbmRetrieveContent(profileIds=refs)
            except vmodl.fault.InvalidArgument:
                found = self._one_by_one(refs)
            for profile in found:
                self._names[profile.profileId.uniqueId] = profile.name
        return dict((profile_id, self._names[profile_id]) for profile_id in profile_ids if profile_id in self._names)

    def _one_by_one(self, refs):
        # PbmRetrieveContent fails wholesale when one id is unknown.
        found = []
        for ref in refs:
            try:
                found.extend(self._profile_manager().PbmRetrieveContent(profileIds=[ref]))
            except vmodl.fault.InvalidArgument:
                continue
        return found

    def all_profiles(self):
        """Every storage requirement profile: [(id, name)]."""
        manager = self._profile_manager()
        ids = manager.PbmQueryProfile(resourceType=pbm.profile.ResourceType(resourceType="STORAGE"),
                                      profileCategory="REQUIREMENT")
        return [(profile.profileId.uniqueId, profile.name) for profile in manager.PbmRetrieveContent(profileIds=ids)]

    def profile_by_name(self, name):
        matches = [profile_id for profile_id, profile_name in self.all_profiles() if profile_name == name]
        if not matches:
            raise NotFoundError("no storage policy named '%s'" % name)
        if len(matches) > 1:
            raise AmbiguousError("storage policy name '%s' is ambiguous: ids %s" % (name, ", ".join(matches)))
        return matches[0]

    def associated_profiles(self, vm_disks):
        """Policies of VM homes and disks in one call.

        ``vm_disks`` maps a VM moid to its disk device keys.  Returns
        {(vm moid, None): [profile ids]} for the home and
        {(vm moid, device key): [profile ids]} for each disk.
        """
        refs = []
        for vm_moid, device_keys in vm_disks.items():
            refs.append(vm_home_ref(self.server_uuid, vm_moid))
            refs.extend(disk_ref(self.server_uuid, vm_moid, key) for key in device_keys)
        if not refs:
            return {}
        results = self._profile_manager().PbmQueryAssociatedProfiles(entities=refs)
        associations = {}
        for result in results or []:
            ref = result.object
            if ref.objectType == "virtualDiskId":
                vm_moid, device_key = ref.key.rsplit(":", 1)
                owner = (vm_moid, int(device_key))
            else:
                owner = (ref.key, None)
            associations[owner] = [profile_id.uniqueId for profile_id in result.profileId or []]
        return associations
