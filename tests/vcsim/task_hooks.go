package main

import (
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Task hooks: launcher features that must act on what a vim25 task does -
// record something once it succeeded, or refuse it before the simulator
// does its work - without touching govmomi.
//
// How it hooks in:
//   - the vim25 Registry.Handler sees every SOAP call before it runs; each
//     feature's watcher looks at the request and may return a hook for the
//     task the call will create. The hooks are noted against the object
//     called (a VM, or the folder for CreateVM_Task);
//   - a Registry RegisterObject handler sees each new Task being Put, which
//     happens in Task.Run before the task's goroutine starts, so swapping
//     Execute there is race free. It claims the hooks noted on the task's
//     entity whose DescriptionId matches, and wraps the task's Execute:
//     every hook's before runs first (a fault fails the task, and the
//     simulator's own work never runs), every hook's after runs once the
//     simulator's work succeeded - after the simulator applied the request
//     (device keys are final then) and before the task turns "success", so
//     a client that waited for the task always sees the outcome.
//
// Registry.Handler cannot replace the object a method runs on (a session's
// lookup overrides it), which is why the hooks only observe the request.
//
// A registry has one taskHooks (taskHooksFor), shared by every feature.

// taskHook is what one feature does with the task one request creates.
type taskHook struct {
	// descriptionID is the Task.Info.DescriptionId of the task the request
	// creates ("Folder.createVm", "VirtualMachine.reconfigVm", ...).
	descriptionID string
	// before, if set, runs on the task's goroutine before the simulator's
	// own work; a fault ends the task in error without that work.
	before func(ctx *simulator.Context, entity types.ManagedObjectReference) types.BaseMethodFault
	// after, if set, runs once the simulator's work succeeded; entity is the
	// object the task ran on, result the task's result.
	after func(ctx *simulator.Context, entity types.ManagedObjectReference, result types.AnyType)
}

// taskWatcher looks at a request before the simulator runs it and returns
// the hook for the task it creates, or nil when the feature does not care.
type taskWatcher func(method *simulator.Method) *taskHook

type taskHooks struct {
	mu       sync.Mutex
	watchers []taskWatcher
	pending  map[types.ManagedObjectReference][]*taskHook
}

var (
	taskHooksMu         sync.Mutex
	taskHooksByRegistry = map[*simulator.Registry]*taskHooks{}
)

// taskHooksFor is the registry's taskHooks, installed on first use.
func taskHooksFor(registry *simulator.Registry) *taskHooks {
	taskHooksMu.Lock()
	defer taskHooksMu.Unlock()
	if hooks := taskHooksByRegistry[registry]; hooks != nil {
		return hooks
	}
	hooks := &taskHooks{pending: map[types.ManagedObjectReference][]*taskHook{}}
	previous := registry.Handler
	registry.Handler = func(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		hooks.observe(method)
		if previous != nil {
			return previous(ctx, method)
		}
		return nil, nil
	}
	registry.AddHandler(hooks)
	taskHooksByRegistry[registry] = hooks
	return hooks
}

// watch adds a feature's watcher; watchers run, and their hooks apply, in
// the order they were added.
func (h *taskHooks) watch(watcher taskWatcher) {
	h.mu.Lock()
	h.watchers = append(h.watchers, watcher)
	h.mu.Unlock()
}

// observe notes the hooks of a request before the simulator runs it.
func (h *taskHooks) observe(method *simulator.Method) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var hooks []*taskHook
	for _, watcher := range h.watchers {
		if hook := watcher(method); hook != nil {
			hooks = append(hooks, hook)
		}
	}
	if len(hooks) == 0 {
		return
	}
	// Overwrites whatever an earlier call on this object left behind when it
	// failed before creating its task.
	h.pending[method.This] = hooks
}

// Reference names the hooks among the registry's RegisterObject handlers.
func (h *taskHooks) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "VcsimLauncherTaskHooks", Value: "task-hooks"}
}

// PutObject claims the pending hooks of the object a new task runs on.
func (h *taskHooks) PutObject(ctx *simulator.Context, obj mo.Reference) {
	task, ok := obj.(*simulator.Task)
	if !ok || task.Info.Entity == nil {
		return
	}
	entity := *task.Info.Entity
	var hooks []*taskHook
	h.mu.Lock()
	for _, hook := range h.pending[entity] {
		if hook.descriptionID == task.Info.DescriptionId {
			hooks = append(hooks, hook)
		}
	}
	if len(hooks) > 0 {
		delete(h.pending, entity)
	}
	h.mu.Unlock()
	if len(hooks) == 0 {
		return
	}
	execute := task.Execute
	task.Execute = func(t *simulator.Task) (types.AnyType, types.BaseMethodFault) {
		for _, hook := range hooks {
			if hook.before == nil {
				continue
			}
			if fault := hook.before(ctx, entity); fault != nil {
				return nil, fault
			}
		}
		result, fault := execute(t)
		if fault == nil {
			for _, hook := range hooks {
				if hook.after != nil {
					hook.after(ctx, entity, result)
				}
			}
		}
		return result, fault
	}
}

func (h *taskHooks) UpdateObject(*simulator.Context, mo.Reference, []types.PropertyChange) {}

func (h *taskHooks) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}
