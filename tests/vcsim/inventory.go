package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// simulatorHome is the directory the model created for its datastores;
// the simulator publishes it as the "vcsim.home" advanced setting.
func simulatorHome(model *simulator.Model) string {
	for _, setting := range model.Map().OptionManager().Setting {
		option := setting.GetOptionValue()
		if option.Key == "vcsim.home" {
			if home, ok := option.Value.(string); ok {
				return home
			}
		}
	}
	return ""
}

// datastorePaths maps each datastore to the local folder behind it, where
// the VDDK test double finds the flat-vmdk files. Names are unique within a
// datacenter only, so with several datacenters keys are "<dc>/<datastore>".
func datastorePaths(model *simulator.Model) map[string]string {
	registry := model.Map()
	multipleDatacenters := len(registry.All("Datacenter")) > 1
	paths := map[string]string{}
	for _, entity := range registry.All("Datastore") {
		datastore := entity.(*simulator.Datastore)
		key := datastore.Name
		if multipleDatacenters {
			key = datacenterName(registry, datastore.Parent) + "/" + key
		}
		paths[key] = datastore.Info.GetDatastoreInfo().Url
	}
	return paths
}

// datacenterName walks up the folder tree to the owning datacenter.
func datacenterName(registry *simulator.Registry, ref *types.ManagedObjectReference) string {
	for ref != nil {
		entity, ok := registry.Get(*ref).(mo.Entity)
		if !ok {
			return ""
		}
		if ref.Type == "Datacenter" {
			return entity.Entity().Name
		}
		ref = entity.Entity().Parent
	}
	return ""
}
