package main

import (
	"net/http"

	"github.com/vmware/govmomi/simulator"
)

// registerExtensions is where the launcher replaces or adds simulator
// behaviour before the server starts. Method handlers can be swapped by
// putting a wrapper object with the same reference into model.Map() (the
// way govmomi documents extending the simulator), or per call through
// model.Map().Handler.
func registerExtensions(model *simulator.Model, opts *options) {
	installAuthorization(model, opts.username, opts.groups)
	simulator.RegisterEndpoint(servePBMAtSDKPath)
	// Storage policies of VM homes and disks, as PBM reports them, and
	// CreateVM_Task encrypting with the key its ConfigSpec gives. Both act
	// on task outcomes through the registry's one taskHooks (task_hooks.go).
	installPolicyAssociations(model)
	installCreateVMCrypto(model)
	// Changed block tracking: disk changeIds and QueryChangedDiskAreas.
	installChangeTracking(model)
}

// servePBMAtSDKPath answers PBM requests at /pbm/sdk, where real vCenter
// serves them and where pyVmomi clients look; the simulator only mounts
// /pbm. It runs after pbm/simulator's endpoint because main registers it
// after all package init functions ran.
func servePBMAtSDKPath(service *simulator.Service, _ *simulator.Registry) {
	mux := service.ServeMux
	mux.HandleFunc("/pbm/sdk", func(w http.ResponseWriter, r *http.Request) {
		forwarded := r.Clone(r.Context())
		forwarded.URL.Path = "/pbm"
		mux.ServeHTTP(w, forwarded)
	})
}
