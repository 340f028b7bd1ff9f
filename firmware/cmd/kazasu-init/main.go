// Binary kazasu-init is PID 1 of a kazasu image: the gokrazy runtime
// (mounts, hostname, watchdog petting, service supervision, the local
// update socket) with kazasu's service list.
//
// It starts gokrazy's dhcp and ntp and then every service listed in
// /etc/kazasu/services.json (written by fwbuild; by default kazasud and
// the update agent). A service that exits non-zero is restarted by the
// supervisor. If this program itself dies the kernel panics, and with
// panic=10 the board resets; during a trial boot that resets into the
// committed slot. On a trial boot it also guards the update agent: if the
// trial is not settled within trialguard.DefaultDeadline, it resets the
// board (firmware/trialguard).
package main

import (
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"

	"github.com/gokrazy/gokrazy"
	"golang.org/x/sys/unix"

	"kazasu/firmware/trialguard"
)

// buildTimestamp is set by fwbuild (-X) to SOURCE_DATE_EPOCH as RFC 3339.
var buildTimestamp = "unset"

const servicesFile = "/etc/kazasu/services.json"

type service struct {
	Path string   `json:"path"`
	Args []string `json:"args"`
}

func loadServices(path string) ([]service, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("kazasu-init: %w", err)
	}
	var svcs []service
	if err := json.Unmarshal(b, &svcs); err != nil {
		return nil, fmt.Errorf("kazasu-init: %s: %w", path, err)
	}
	for _, s := range svcs {
		if s.Path == "" || s.Path[0] != '/' {
			return nil, fmt.Errorf("kazasu-init: %s: service path %q is not absolute", path, s.Path)
		}
	}
	return svcs, nil
}

func main() {
	log.SetFlags(0)
	log.Printf("kazasu-init: build %s", buildTimestamp)
	if err := gokrazy.Boot(buildTimestamp); err != nil {
		log.Fatal(err)
	}
	svcs, err := loadServices(servicesFile)
	if err != nil {
		// Without its services the slot is useless: die, so that a trial
		// boot falls back (panic=10) instead of passing as "up".
		log.Fatal(err)
	}
	list := []*gokrazy.Service{
		gokrazy.NewService(exec.Command("/gokrazy/dhcp")),
		gokrazy.NewService(exec.Command("/gokrazy/ntp")),
	}
	for _, s := range svcs {
		list = append(list, gokrazy.NewService(exec.Command(s.Path, s.Args...)))
	}
	if err := gokrazy.SuperviseServices(list); err != nil {
		log.Fatal(err)
	}
	// A trial boot that the agent does not settle in time (it hung) ends
	// in a reset, and so in the committed slot.
	deadline, err := trialguard.ReadDeadline(trialguard.DeadlineFile)
	if err != nil {
		log.Printf("kazasu-init: %v; using %s", err, deadline)
	}
	guard := trialguard.Guard{
		Deadline: deadline,
		IsTrial: func() bool {
			return trialguard.IsTrialBoot("/proc/cmdline", "/proc/device-tree/chosen/bootloader/tryboot")
		},
		Settled: func() bool { _, err := os.Stat(trialguard.SettledFile); return err == nil },
		After:   time.After,
		Reboot: func(string) error {
			unix.Sync()
			return unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		},
		Logf: log.Printf,
	}
	if _, err := guard.Run(); err != nil {
		log.Printf("kazasu-init: trial guard: %v", err)
	}
	select {}
}
