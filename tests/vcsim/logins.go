package main

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// allowLogins accepts the administrator and every -login user, each with
// its own password, so privilege tests can log in as distinct principals.
// (With only Listen.User set, the simulator accepts that one user.)
func allowLogins(model *simulator.Model, opts *options) {
	passwords := map[string]string{opts.username: opts.password}
	for user, password := range opts.extraLogins {
		passwords[user] = password
	}
	model.Map().SessionManager().ValidLogin = func(login *types.Login) bool {
		password, known := passwords[login.UserName]
		return known && password == login.Password
	}
}
