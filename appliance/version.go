package appliance

// Version is the release, set at build time from git describe:
//
//	go build -ldflags "-X github.com/reeve-edge/reeve/appliance.Version=$(git describe --tags --always --dirty)"
var Version = "dev"
