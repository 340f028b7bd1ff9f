// Binary kazasu-update is the on-device update agent of a kazasu image
// (firmware/updateagent), supervised by kazasu-init.
//
// At every boot it reconciles its record with cmdline.txt and, on a trial
// boot, runs the health checks (kazasud stable, reader self-test, clock
// set, /perm writable) and commits or rolls back. It serves the update API
// on :8074 (POST /v1/bundle, GET /v1/status) to loopback and private
// networks, and copies the provisioning record to /perm on first boot.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"kazasu/firmware/bundle"
	"kazasu/firmware/trialguard"
	"kazasu/firmware/updateagent"
)

type boardFile struct {
	Board     string `json:"board"`
	Bus       string `json:"bus"`
	ReaderURI string `json:"reader_uri"`
}

func main() {
	log.SetFlags(0)
	var (
		listen   = flag.String("listen", ":"+strconv.Itoa(updateagent.DefaultPort), "HTTP API address")
		state    = flag.String("state", "/perm/kazasu/update/state.json", "persistent record")
		etc      = flag.String("etc", "/etc/kazasu", "release, keys and board files")
		kazasud  = flag.String("kazasud", "/user/kazasud", "the daemon whose stability the trial checks")
		window   = flag.Duration("stable", 15*time.Second, "how long kazasud must run without a restart")
		deadline = flag.Duration("check-deadline", 3*time.Minute, "health-check deadline of a trial boot")
	)
	flag.Parse()
	if err := run(*listen, *state, *etc, *kazasud, *window, *deadline); err != nil {
		log.Fatal(err)
	}
}

func run(listen, state, etc, kazasud string, window, deadline time.Duration) error {
	var rel updateagent.Release
	if err := readJSON(etc+"/release.json", &rel); err != nil {
		return err
	}
	var keys bundle.Keys
	for name, dst := range map[string]*[]byte{"current": (*[]byte)(&keys.Current), "next": (*[]byte)(&keys.Next)} {
		b, err := os.ReadFile(etc + "/keys/" + name + ".pub")
		if os.IsNotExist(err) && name == "next" {
			continue
		}
		if err != nil {
			return fmt.Errorf("kazasu-update: %w", err)
		}
		k, err := bundle.ParsePublicKey(b)
		if err != nil {
			return fmt.Errorf("kazasu-update: %s key: %w", name, err)
		}
		*dst = k
	}
	dev, err := updateagent.OpenDevice()
	if err != nil {
		return err
	}
	if ok, err := dev.ProvisionTo("/perm/kazasu/provision.json"); err != nil {
		log.Printf("kazasu-update: provisioning record: %v", err)
	} else if !ok {
		log.Printf("kazasu-update: no provisioning record on %s", dev.Disk)
	}
	checks := []updateagent.Check{
		updateagent.ServiceStable("/proc", kazasud, window),
	}
	var bf boardFile
	if err := readJSON(etc+"/board.json", &bf); err == nil {
		dev, baud := readerDevice(bf)
		checks = append(checks, updateagent.ReaderCheck(bf.Bus, dev, baud))
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	} else {
		log.Printf("kazasu-update: no board.json (VM image): no reader check")
	}
	checks = append(checks,
		updateagent.ClockSet(time.Now, rel.Created),
		updateagent.DataWritable("/perm/kazasu/update"),
	)
	a := updateagent.New(updateagent.Config{Platform: dev, Keys: keys, Release: rel, StatePath: state,
		Checks: checks, CheckDeadline: deadline, SettledPath: trialguard.SettledFile})
	if err := a.Start(context.Background()); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("kazasu-update: %w", err)
	}
	log.Printf("kazasu-update: %s build %d on %s, API on %s", rel.Version, rel.Build, rel.Board, ln.Addr())
	return (&http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}).Serve(ln)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("kazasu-update: %w", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("kazasu-update: %s: %w", path, err)
	}
	return nil
}

// readerDevice splits "pn532_uart:/dev/ttyAMA0:115200" into device and baud.
func readerDevice(bf boardFile) (string, int) {
	parts := strings.SplitN(bf.ReaderURI, ":", 3)
	if len(parts) < 2 {
		return "", 0
	}
	baud := 0
	if len(parts) == 3 {
		baud, _ = strconv.Atoi(parts[2])
	}
	return parts[1], baud
}
