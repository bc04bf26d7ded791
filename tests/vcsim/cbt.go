package main

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"path"
	"regexp"
	"runtime"
	"sort"
	"sync"
	"syscall"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Changed block tracking (CBT). The simulator stores ChangeTrackingEnabled
// from a ConfigSpec but never sets a disk's changeId and has no
// QueryChangedDiskAreas, so incremental backups could not be tested. This
// file emulates what vSphere does, with the disks' flat extent files (which
// tests write into directly) as the disk content:
//
//   - when a snapshot is taken of a VM with CBT enabled, each flat-file
//     backed disk gets a new changeId "<per-disk uuid>/<sequence>" on the
//     VM's current backing and on the snapshot's config, and the content of
//     its flat extent at that moment is fingerprinted (a SHA-256 per
//     cbtBlockSize block, holes skipped with SEEK_DATA/SEEK_HOLE). Without
//     CBT, changeId stays unset;
//   - turning CBT off forgets every epoch of the VM (and clears the current
//     changeIds), so old changeIds fail afterwards, as after a CBT reset;
//     removing a snapshot keeps its epoch: VADP products remove the backup
//     snapshot and use its changeId for the next incremental;
//   - QueryChangedDiskAreas answers "*" with the blocks allocated in the
//     snapshot's epoch and a changeId with the blocks whose content (or
//     allocation) differs between that changeId's epoch and the snapshot's,
//     merged into extents, at most cbtPageBytes of disk range or
//     cbtPageAreas extents per call, so clients must loop on startOffset;
//   - it faults where the API reference says vSphere does (see query):
//     NotFound for a snapshot that does not exist (removed, or not this
//     VM's), InvalidArgument for a changeId that is not a point before the
//     snapshot asked about;
//   - the simulator's snapshots are not point-in-time copies: a snapshot's
//     disk backing is the VM's own flat file (no delta disk), so whatever
//     reads the snapshot's disk (the VDDK double) reads the disk as it is
//     now. A query about a snapshot whose flat file no longer holds what it
//     held when the snapshot was taken is refused with a SystemError that
//     says so, which our code does not take for a CBT refusal: a test that
//     writes after the snapshot fails instead of passing on live data.
//
// How it hooks in, without touching govmomi (same mechanisms as
// pbm_associations.go):
//   - a Registry RegisterObject handler sees each new Task being Put, before
//     its goroutine starts, and wraps Execute of CreateSnapshot(Ex) and
//     ReconfigVM tasks: the wrapper runs after the simulator did its work,
//     still under the VM lock the task holds and before the task reports
//     success;
//   - QueryChangedDiskAreas is not implemented by simulator.VirtualMachine.
//     The documented way to add a method - Put a wrapper type embedding
//     *simulator.VirtualMachine under the VM's reference - is unusable here:
//     the simulator's own code (snapshots, folders, hosts) asserts
//     Map.Get(ref).(*simulator.VirtualMachine) and would panic, and VMs
//     created later would need wrapping too. Registry.Handler cannot just
//     return another object either, since the session lookup of method.This
//     overrides it. So the Handler points method.This at this tracker's
//     reference, which no registry holds, and returns the tracker; the
//     dispatcher then finds the method on it by name. The request body keeps
//     the VM's reference in req.This.

const (
	// cbtBlockSize is the granularity of every area reported: areas start
	// and end on 64 KiB boundaries (the last one may end at the capacity).
	cbtBlockSize = 64 << 10
	// cbtPageBytes and cbtPageAreas bound one QueryChangedDiskAreas answer;
	// real vSphere also answers a large disk in several calls.
	cbtPageBytes = 2 << 30
	cbtPageAreas = 512
)

// changeTracker holds the CBT epochs of all VMs, keyed by VM moref value.
type changeTracker struct {
	mu  sync.Mutex
	vms map[string]*trackedVM
}

type trackedVM struct {
	disks  map[int32]*trackedDisk
	epochs map[string]*diskEpoch // by full changeId
}

// trackedDisk is one disk's CBT identity; a new one starts when the disk
// key points at another file (the disk was replaced).
type trackedDisk struct {
	uuid string
	file string
	seq  int
}

// diskEpoch is a disk's content when a changeId was handed out.
type diskEpoch struct {
	uuid   string
	key    int32
	seq    int    // the changeId's sequence number: a later epoch has a larger one
	file   string // the flat extent fingerprinted
	stamp  fileStamp
	blocks map[int64][sha256.Size]byte // allocated blocks; absent = hole
}

// fileStamp is a flat extent's size and modification time, taken before it
// was fingerprinted: an unchanged stamp means the content is unchanged.
type fileStamp struct {
	size  int64
	mtime int64 // nanoseconds
	found bool
}

func stampOf(file string) (fileStamp, error) {
	info, err := os.Stat(file)
	if errors.Is(err, os.ErrNotExist) {
		return fileStamp{}, nil
	}
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano(), found: true}, nil
}

func installChangeTracking(model *simulator.Model) *changeTracker {
	tracker := &changeTracker{vms: map[string]*trackedVM{}}
	registry := model.Map()
	previous := registry.Handler
	registry.Handler = func(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if method.Name == "QueryChangedDiskAreas" && method.This.Type == "VirtualMachine" {
			// See the file comment: redirect the call to the tracker.
			method.This = tracker.Reference()
			return tracker, nil
		}
		if previous != nil {
			return previous(ctx, method)
		}
		return nil, nil
	}
	registry.AddHandler(tracker)
	return tracker
}

// Reference names the tracker among RegisterObject handlers and is the
// method.This of redirected QueryChangedDiskAreas calls.
func (t *changeTracker) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VcsimLauncherChangeTracker", Value: "cbt"}
}

// --- task hooks ------------------------------------------------------------

func (t *changeTracker) PutObject(ctx *simulator.Context, obj mo.Reference) {
	task, ok := obj.(*simulator.Task)
	if !ok || task.Info.Entity == nil || task.Info.Entity.Type != "VirtualMachine" {
		return
	}
	var after func(*simulator.VirtualMachine, types.AnyType)
	switch task.Info.DescriptionId {
	case "VirtualMachine.createSnapshotEx": // CreateSnapshot_Task runs this one too
		after = func(vm *simulator.VirtualMachine, result types.AnyType) { t.snapshotTaken(ctx, vm, result) }
	case "VirtualMachine.reconfigVm":
		after = func(vm *simulator.VirtualMachine, _ types.AnyType) { t.reconfigured(ctx, vm) }
	default:
		return
	}
	vm, ok := ctx.Map.Get(*task.Info.Entity).(*simulator.VirtualMachine)
	if !ok {
		return
	}
	execute := task.Execute
	task.Execute = func(run *simulator.Task) (types.AnyType, types.BaseMethodFault) {
		result, fault := execute(run)
		if fault == nil {
			after(vm, result)
		}
		return result, fault
	}
}

func (t *changeTracker) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

// RemoveObject forgets a VM's epochs when it leaves the inventory.
func (t *changeTracker) RemoveObject(_ *simulator.Context, ref types.ManagedObjectReference) {
	if ref.Type == "VirtualMachine" {
		t.forget(ref.Value)
	}
}

func (t *changeTracker) forget(vm string) {
	t.mu.Lock()
	delete(t.vms, vm)
	t.mu.Unlock()
}

func cbtEnabled(vm *simulator.VirtualMachine) bool {
	return vm.Config != nil && vm.Config.ChangeTrackingEnabled != nil && *vm.Config.ChangeTrackingEnabled
}

// flatDisks lists the disks whose changeId CBT maintains.
func flatDisks(devices []types.BaseVirtualDevice) map[int32]*types.VirtualDisk {
	disks := map[int32]*types.VirtualDisk{}
	for _, device := range devices {
		if disk, ok := device.(*types.VirtualDisk); ok {
			if _, flat := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo); flat {
				disks[disk.Key] = disk
			}
		}
	}
	return disks
}

// reconfigured: turning CBT off resets it, as on vSphere.
func (t *changeTracker) reconfigured(ctx *simulator.Context, vm *simulator.VirtualMachine) {
	if cbtEnabled(vm) {
		return
	}
	t.forget(vm.Self.Value)
	cleared := false
	for _, disk := range flatDisks(vm.Config.Hardware.Device) {
		backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if backing.ChangeId != "" {
			backing.ChangeId, cleared = "", true
		}
	}
	if cleared {
		ctx.Map.Update(ctx, vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
	}
}

// snapshotTaken starts a new epoch on every flat disk of a CBT-enabled VM.
// The task holds the VM lock; the snapshot is locked here for its update.
func (t *changeTracker) snapshotTaken(ctx *simulator.Context, vm *simulator.VirtualMachine, result types.AnyType) {
	ref, ok := result.(types.ManagedObjectReference)
	if !ok || !cbtEnabled(vm) {
		return
	}
	snapshot, ok := ctx.Map.Get(ref).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return
	}
	changeIDs := map[int32]string{}
	for key, disk := range flatDisks(vm.Config.Hardware.Device) {
		backing := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		file, err := flatExtentPath(ctx, vm, backing)
		var stamp fileStamp
		var blocks map[int64][sha256.Size]byte
		if err == nil {
			stamp, err = stampOf(file) // before reading: a write while hashing changes it
		}
		if err == nil {
			blocks, err = fingerprint(file, diskCapacity(disk))
		}
		if err != nil {
			log.Printf("CBT: no changeId for %s disk %d: %v", vm.Self.Value, key, err)
			continue
		}
		id := t.newEpoch(vm.Self.Value, key, file, stamp, blocks)
		backing.ChangeId = id
		changeIDs[key] = id
	}
	if len(changeIDs) == 0 {
		return
	}
	ctx.Map.Update(ctx, vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
	ctx.WithLock(snapshot, func() {
		for key, disk := range flatDisks(snapshot.Config.Hardware.Device) {
			if id, ok := changeIDs[key]; ok {
				disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo).ChangeId = id
			}
		}
		ctx.Update(snapshot, []types.PropertyChange{{Name: "config.hardware.device", Val: snapshot.Config.Hardware.Device}})
	})
}

func (t *changeTracker) newEpoch(vm string, key int32, file string, stamp fileStamp, blocks map[int64][sha256.Size]byte) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	state := t.vms[vm]
	if state == nil {
		state = &trackedVM{disks: map[int32]*trackedDisk{}, epochs: map[string]*diskEpoch{}}
		t.vms[vm] = state
	}
	disk := state.disks[key]
	if disk == nil || disk.file != file {
		disk = &trackedDisk{uuid: newTrackingUUID(), file: file}
		state.disks[key] = disk
	}
	disk.seq++
	id := fmt.Sprintf("%s/%d", disk.uuid, disk.seq)
	state.epochs[id] = &diskEpoch{uuid: disk.uuid, key: key, seq: disk.seq, file: file, stamp: stamp, blocks: blocks}
	return id
}

// newTrackingUUID formats 16 random bytes the way vSphere prints a disk's
// CBT uuid in a changeId: "52 3c 7e 9b 22 10 4a 6f-8a 01 22 33 44 55 66 77".
func newTrackingUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[0] = 0x52 // vSphere's uuids start so
	text := make([]byte, 0, 47)
	for i, v := range b {
		if i > 0 {
			if i == 8 {
				text = append(text, '-')
			} else {
				text = append(text, ' ')
			}
		}
		text = fmt.Appendf(text, "%02x", v)
	}
	return string(text)
}

var changeIDPattern = regexp.MustCompile(`^([0-9a-f]{2} ){7}[0-9a-f]{2}-([0-9a-f]{2} ){7}[0-9a-f]{2}/[0-9]+$`)

// --- disk content ---------------------------------------------------------

func diskCapacity(disk *types.VirtualDisk) int64 {
	if disk.CapacityInBytes > 0 {
		return disk.CapacityInBytes
	}
	return disk.CapacityInKB * 1024
}

// flatExtentPath is the local file behind a disk, e.g. .../vm/disk1-flat.vmdk
// (local datastores only: the simulator maps vSAN paths privately).
func flatExtentPath(ctx *simulator.Context, vm *simulator.VirtualMachine, backing *types.VirtualDiskFlatVer2BackingInfo) (string, error) {
	var p object.DatastorePath
	if !p.FromString(backing.FileName) {
		return "", fmt.Errorf("not a datastore path: %q", backing.FileName)
	}
	var ds *simulator.Datastore
	if backing.Datastore != nil {
		ds, _ = ctx.Map.Get(*backing.Datastore).(*simulator.Datastore)
	}
	if ds == nil {
		ds, _ = ctx.Map.FindByName(p.Datastore, vm.Datastore).(*simulator.Datastore)
	}
	if ds == nil {
		return "", fmt.Errorf("datastore %q not found", p.Datastore)
	}
	return simulator.VirtualDiskBackingFileName(path.Join(ds.Summary.Url, p.Path)), nil
}

// lseek whence values for data and holes (Linux and the BSDs differ).
func seekWhence() (data, hole int, ok bool) {
	switch runtime.GOOS {
	case "linux":
		return 3, 4, true
	case "darwin", "freebsd":
		return 4, 3, true
	}
	return 0, 0, false
}

// dataExtents lists [start, end) ranges of f below size that hold data. A
// file system without SEEK_DATA reports the whole file as one extent.
func dataExtents(f *os.File, size int64) ([][2]int64, error) {
	whole := [][2]int64{{0, size}}
	seekData, seekHole, ok := seekWhence()
	if !ok {
		return whole, nil
	}
	var extents [][2]int64
	for offset := int64(0); offset < size; {
		start, err := f.Seek(offset, seekData)
		if errors.Is(err, syscall.ENXIO) || (err == nil && start >= size) {
			break
		}
		if errors.Is(err, syscall.EINVAL) && offset == 0 {
			return whole, nil
		}
		if err != nil {
			return nil, err
		}
		end, err := f.Seek(start, seekHole)
		if err != nil {
			return nil, err
		}
		end = min(end, size)
		extents = append(extents, [2]int64{start, end})
		offset = end
	}
	return extents, nil
}

// fingerprint hashes every cbtBlockSize block of a flat extent that holds
// data; bytes past the capacity do not count. A missing file is an
// unwritten disk.
func fingerprint(file string, capacity int64) (map[int64][sha256.Size]byte, error) {
	blocks := map[int64][sha256.Size]byte{}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return blocks, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := min(info.Size(), capacity)
	extents, err := dataExtents(f, size)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, cbtBlockSize)
	for _, extent := range extents {
		for block := extent[0] / cbtBlockSize; block*cbtBlockSize < extent[1]; block++ {
			if _, done := blocks[block]; done {
				continue
			}
			// Past the end of the file the disk reads zeros: hash whole
			// blocks so growing the file alone changes nothing.
			data := buf[:min(cbtBlockSize, capacity-block*cbtBlockSize)]
			n, err := f.ReadAt(data, block*cbtBlockSize)
			if err != nil && err != io.EOF {
				return nil, err
			}
			clear(data[n:])
			blocks[block] = sha256.Sum256(data)
		}
	}
	return blocks, nil
}

// --- QueryChangedDiskAreas ------------------------------------------------

// queriedDisk is what a query needs from the VM, read under its lock.
type queriedDisk struct {
	enabled   bool
	poweredOn bool
	changeID  string // of the snapshot's (or current) backing
	fileName  string
	file      string
	capacity  int64
}

func (t *changeTracker) QueryChangedDiskAreas(ctx *simulator.Context, req *types.QueryChangedDiskAreas) soap.HasFault {
	body := &methods.QueryChangedDiskAreasBody{}
	// vSphere API reference, VirtualMachine.QueryChangedDiskAreas: "Required
	// privileges: VirtualMachine.Provisioning.DiskRandomRead".
	if fault := requirePrivilege(ctx, req.This, "VirtualMachine.Provisioning.DiskRandomRead"); fault != nil {
		body.Fault_ = fault
		return body
	}
	info, fault := t.query(ctx, req)
	if fault != nil {
		body.Fault_ = fault
	} else {
		body.Res = &types.QueryChangedDiskAreasResponse{Returnval: *info}
	}
	return body
}

// The faults below are those the vSphere Web Services API reference lists
// for VirtualMachine.QueryChangedDiskAreas (the method's "Faults" table; the
// same text is in pyVmomi's docs/vim/VirtualMachine.rst, "Raises"):
//   - FileFault when the virtual disk files cannot be accessed or queried
//     (here: CBT off, or its data reset, so the changeId is gone);
//   - NotFound when the snapshot specified does not exist;
//   - InvalidArgument when deviceKey is not a virtual disk, startOffset is
//     past the end of the disk, the changeId is invalid, or the disk does
//     not support change tracking.
// And what a changeId is, from the same page (also the JSON API's
// https://developer.broadcom.com/xapis/virtual-infrastructure-json-api/latest/sdk/vim25/release/VirtualMachine/moId/QueryChangedDiskAreas/post/):
// it refers to a point in the past, where the change interval begins; the
// snapshot passed in is where it ends. A changeId handed out after that
// snapshot was taken begins no interval that ends at it: it is invalid.

func invalidArgument(property, format string, args ...any) *soap.Fault {
	return simulator.Fault(fmt.Sprintf(format, args...), &types.InvalidArgument{InvalidProperty: property})
}

func fileFault(file, format string, args ...any) *soap.Fault {
	return simulator.Fault(fmt.Sprintf(format, args...), &types.FileFault{File: file})
}

func notFound(format string, args ...any) *soap.Fault {
	return simulator.Fault(fmt.Sprintf(format, args...), &types.NotFound{})
}

func (t *changeTracker) query(ctx *simulator.Context, req *types.QueryChangedDiskAreas) (*types.DiskChangeInfo, *soap.Fault) {
	disk, fault := lookUpDisk(ctx, req)
	if fault != nil {
		return nil, fault
	}
	if !disk.enabled {
		return nil, fileFault(disk.fileName, "change tracking is not enabled on %s (config.changeTrackingEnabled is false): cannot query changed areas of %s",
			req.This.Value, disk.fileName)
	}
	if req.StartOffset < 0 || req.StartOffset >= disk.capacity {
		return nil, invalidArgument("startOffset", "startOffset %d is outside disk %d (capacity %d bytes)",
			req.StartOffset, req.DeviceKey, disk.capacity)
	}
	if req.ChangeId != "*" && !changeIDPattern.MatchString(req.ChangeId) {
		return nil, invalidArgument("changeId", "changeId %q is neither \"*\" nor a changeId like \"52 .. ../N\"", req.ChangeId)
	}

	// The state to report on: the snapshot's epoch, or the file as it is now.
	var target *diskEpoch
	if req.Snapshot != nil {
		if disk.changeID == "" {
			return nil, fileFault(disk.fileName, "snapshot %s was taken without change tracking: disk %d has no changeId",
				req.Snapshot.Value, req.DeviceKey)
		}
		if target = t.epoch(req.This.Value, disk.changeID); target == nil {
			return nil, fileFault(disk.fileName, "change tracking data of disk %d was reset: changeId %q of snapshot %s is no longer known",
				req.DeviceKey, disk.changeID, req.Snapshot.Value)
		}
	} else {
		if disk.poweredOn {
			return nil, simulator.Fault("QueryChangedDiskAreas without a snapshot needs the VM powered off",
				&types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: types.VirtualMachinePowerStatePoweredOn})
		}
		blocks, err := fingerprint(disk.file, disk.capacity)
		if err != nil {
			return nil, fileFault(disk.fileName, "reading %s: %v", disk.fileName, err)
		}
		target = &diskEpoch{key: req.DeviceKey, blocks: blocks}
		if current := t.epoch(req.This.Value, disk.changeID); current != nil {
			target.uuid = current.uuid
		}
	}

	var changed []int64
	if req.ChangeId == "*" {
		for block := range target.blocks {
			changed = append(changed, block)
		}
	} else {
		base := t.epoch(req.This.Value, req.ChangeId)
		if base == nil || base.key != req.DeviceKey || base.uuid != target.uuid {
			return nil, fileFault(disk.fileName, "changeId %q is unknown for disk %d of %s (change tracking was reset or the changeId belongs to another disk)",
				req.ChangeId, req.DeviceKey, req.This.Value)
		}
		if req.Snapshot != nil && base.seq > target.seq {
			return nil, invalidArgument("changeId", "changeId %q was handed out after snapshot %s was taken (its changeId is %q): "+
				"a changeId must name a point before the snapshot asked about", req.ChangeId, req.Snapshot.Value, disk.changeID)
		}
		changed = differingBlocks(base.blocks, target.blocks)
	}
	if req.Snapshot != nil {
		if fault := stillAsTaken(target, disk, req.Snapshot.Value); fault != nil {
			return nil, fault
		}
	}
	sort.Slice(changed, func(i, j int) bool { return changed[i] < changed[j] })
	return page(changed, req.StartOffset, disk.capacity), nil
}

// stillAsTaken refuses to describe a snapshot whose disk no longer holds
// what it held when the snapshot was taken. The simulator keeps no delta
// disk, so the snapshot's disk is the VM's live flat file: the areas would
// be right for the snapshot, the bytes read through the double would not.
// vSphere never raises this; it is the test bed saying it cannot emulate the
// snapshot any more (a SystemError, which our CBT code does not take for a
// CBT refusal to fall back from).
func stillAsTaken(target *diskEpoch, disk *queriedDisk, snapshot string) *soap.Fault {
	if target.file != disk.file {
		return nil
	}
	stamp, err := stampOf(disk.file)
	if err == nil && stamp == target.stamp {
		return nil
	}
	var blocks map[int64][sha256.Size]byte
	if err == nil {
		blocks, err = fingerprint(disk.file, disk.capacity)
	}
	if err != nil {
		return fileFault(disk.fileName, "reading %s: %v", disk.fileName, err)
	}
	changed := differingBlocks(target.blocks, blocks)
	if len(changed) == 0 {
		return nil
	}
	reason := fmt.Sprintf("vcsim launcher: %s was written after snapshot %s was taken (%d blocks of 64 KiB differ): "+
		"the simulator's snapshots share the VM's flat file (no delta disks), so the snapshot's content is gone; "+
		"write before taking the snapshot", disk.fileName, snapshot, len(changed))
	return simulator.Fault(reason, &types.SystemError{Reason: reason})
}

func (t *changeTracker) epoch(vm, changeID string) *diskEpoch {
	t.mu.Lock()
	defer t.mu.Unlock()
	if state := t.vms[vm]; state != nil {
		return state.epochs[changeID]
	}
	return nil
}

// lookUpDisk reads the disk a query names, under the VM's and snapshot's
// locks (never while holding t.mu: snapshot tasks take t.mu under the VM lock).
func lookUpDisk(ctx *simulator.Context, req *types.QueryChangedDiskAreas) (*queriedDisk, *soap.Fault) {
	vm, ok := ctx.Map.Get(req.This).(*simulator.VirtualMachine)
	if !ok {
		return nil, simulator.Fault("", &types.ManagedObjectNotFound{Obj: req.This})
	}
	var snapshot *simulator.VirtualMachineSnapshot
	if req.Snapshot != nil {
		// NotFound "if the snapshot specified does not exist": removed (no
		// longer in the inventory), or not one of this VM's snapshots.
		snapshot, ok = ctx.Map.Get(*req.Snapshot).(*simulator.VirtualMachineSnapshot)
		if !ok {
			return nil, notFound("snapshot %s of %s does not exist (removed?)", req.Snapshot.Value, req.This.Value)
		}
		if snapshot.Vm != req.This {
			return nil, notFound("snapshot %s does not exist on %s: it belongs to %s", req.Snapshot.Value, req.This.Value, snapshot.Vm.Value)
		}
	}
	var disk *queriedDisk
	var fault *soap.Fault
	ctx.WithLock(vm, func() {
		disk = &queriedDisk{enabled: cbtEnabled(vm), poweredOn: vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn}
		devices := vm.Config.Hardware.Device
		read := func() {
			device := findDevice(devices, req.DeviceKey)
			virtualDisk, isDisk := device.(*types.VirtualDisk)
			if !isDisk {
				fault = invalidArgument("deviceKey", "%s has no virtual disk with key %d", req.This.Value, req.DeviceKey)
				return
			}
			backing, flat := virtualDisk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !flat {
				fault = simulator.Fault(fmt.Sprintf("disk %d: change tracking is emulated for flat disks only", req.DeviceKey), &types.NotSupported{})
				return
			}
			disk.changeID, disk.fileName, disk.capacity = backing.ChangeId, backing.FileName, diskCapacity(virtualDisk)
			file, err := flatExtentPath(ctx, vm, backing)
			if err != nil {
				fault = fileFault(backing.FileName, "disk %d: %v", req.DeviceKey, err)
				return
			}
			disk.file = file
		}
		if snapshot != nil {
			ctx.WithLock(snapshot, func() {
				devices = snapshot.Config.Hardware.Device
				read()
			})
		} else {
			read()
		}
	})
	return disk, fault
}

func findDevice(devices []types.BaseVirtualDevice, key int32) types.BaseVirtualDevice {
	for _, device := range devices {
		if device.GetVirtualDevice().Key == key {
			return device
		}
	}
	return nil
}

// differingBlocks: blocks whose content differs, or that were allocated in
// one epoch only (written, or unmapped, since).
func differingBlocks(base, target map[int64][sha256.Size]byte) []int64 {
	var changed []int64
	for block, sum := range target {
		if old, ok := base[block]; !ok || old != sum {
			changed = append(changed, block)
		}
	}
	for block := range base {
		if _, ok := target[block]; !ok {
			changed = append(changed, block)
		}
	}
	return changed
}

// page answers one call: the sorted blocks merged into extents, clipped to
// [start, start+cbtPageBytes) and the capacity, at most cbtPageAreas of
// them; length ends where the answer stops so the caller continues there.
func page(blocks []int64, start, capacity int64) *types.DiskChangeInfo {
	end := min(capacity, start+cbtPageBytes)
	var areas []types.DiskChangeExtent
	for i := 0; i < len(blocks); {
		j := i + 1
		for j < len(blocks) && blocks[j] == blocks[j-1]+1 {
			j++
		}
		from, to := max(blocks[i]*cbtBlockSize, start), min((blocks[j-1]+1)*cbtBlockSize, end)
		i = j
		if from >= to {
			if from >= end {
				break
			}
			continue
		}
		if len(areas) == cbtPageAreas {
			end = areas[len(areas)-1].Start + areas[len(areas)-1].Length
			break
		}
		areas = append(areas, types.DiskChangeExtent{Start: from, Length: to - from})
	}
	return &types.DiskChangeInfo{StartOffset: start, Length: end - start, ChangedArea: areas}
}
