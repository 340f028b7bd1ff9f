// Package agenttest is a Raspberry Pi in memory for tests of the update
// agent and of the tools that talk to it: two root slots, cmdline.txt and
// cmdline-try.txt, and the Pi firmware's one-shot tryboot flag.
package agenttest

import (
	"bytes"
	"errors"
	"sync"

	"kazasu/firmware/slot"
)

// Pi is an updateagent.Platform in memory. Its embedded mutex guards the
// fields, which tests read and set directly (holding it when the agent
// may run concurrently).
type Pi struct {
	sync.Mutex
	Slots    map[slot.Slot][]byte // slot contents, allocated when the agent opens a slot
	SlotSize int64
	Cmdline  slot.Slot // what cmdline.txt names
	Try      slot.Slot // what cmdline-try.txt names
	Flag     bool      // the one-shot tryboot flag
	Running  slot.Slot // the slot this boot runs from
	Tryboot  bool      // whether this boot is a trial boot
	Corrupt  bool      // a bad medium: the first write to a slot flips a byte
	// OnReboot, if set, is called (without the lock) when the agent asks
	// for a reboot; the board then boots when the test calls Boot.
	OnReboot func(reason string)
}

// New returns a Pi booted from slot A with slots of size bytes.
func New(size int64) *Pi {
	return &Pi{Slots: map[slot.Slot][]byte{}, SlotSize: size, Cmdline: slot.A, Try: slot.A, Running: slot.A}
}

// Boot plays the Pi firmware: cmdline.txt's slot, or once — if the flag
// is set — cmdline-try.txt's as a trial boot.
func (p *Pi) Boot() {
	p.Lock()
	defer p.Unlock()
	p.Running, p.Tryboot = p.Cmdline, false
	if p.Flag {
		p.Flag, p.Running, p.Tryboot = false, p.Try, true
	}
}

func (p *Pi) Observe() (running, cmdline slot.Slot, tryboot bool, err error) {
	p.Lock()
	defer p.Unlock()
	return p.Running, p.Cmdline, p.Tryboot, nil
}

func (p *Pi) OpenSlot(s slot.Slot) (slot.Device, error) {
	p.Lock()
	defer p.Unlock()
	if s == p.Running {
		return nil, errors.New("the running slot")
	}
	p.Slots[s] = make([]byte, p.SlotSize)
	return &dev{p: p, s: s}, nil
}

func (p *Pi) WriteCmdline(try bool, s slot.Slot) error {
	p.Lock()
	defer p.Unlock()
	if try {
		p.Try = s
	} else {
		p.Cmdline = s
	}
	return nil
}

func (p *Pi) ArmTryboot() error {
	p.Lock()
	defer p.Unlock()
	p.Flag = true
	return nil
}

func (p *Pi) Reboot(reason string) error {
	if p.OnReboot != nil {
		p.OnReboot(reason)
	}
	return nil
}

// BootState is the Pi's boot configuration at one moment.
type BootState struct {
	Cmdline, Try, Running slot.Slot
	Flag, Tryboot         bool
}

// State returns the boot configuration, read under the lock.
func (p *Pi) State() BootState {
	p.Lock()
	defer p.Unlock()
	return BootState{Cmdline: p.Cmdline, Try: p.Try, Running: p.Running, Flag: p.Flag, Tryboot: p.Tryboot}
}

// SlotData returns a copy of a slot's contents (nil if never opened).
func (p *Pi) SlotData(s slot.Slot) []byte {
	p.Lock()
	defer p.Unlock()
	return bytes.Clone(p.Slots[s])
}

// SetCorrupt makes slot writes flip a byte (a bad medium), or not.
func (p *Pi) SetCorrupt(on bool) {
	p.Lock()
	defer p.Unlock()
	p.Corrupt = on
}

// dev is an open slot.
type dev struct {
	p *Pi
	s slot.Slot
}

func (d *dev) WriteAt(b []byte, off int64) (int, error) {
	d.p.Lock()
	defer d.p.Unlock()
	buf := d.p.Slots[d.s]
	if off < 0 || off > int64(len(buf)) {
		return 0, errors.New("write past the slot's end")
	}
	n := copy(buf[off:], b)
	if d.p.Corrupt && off == 0 && len(buf) > 100 {
		buf[100] ^= 1
	}
	if n < len(b) {
		return n, errors.New("write past the slot's end")
	}
	return n, nil
}

func (d *dev) ReadAt(b []byte, off int64) (int, error) {
	d.p.Lock()
	defer d.p.Unlock()
	return bytes.NewReader(d.p.Slots[d.s]).ReadAt(b, off)
}

func (d *dev) Sync() error      { return nil }
func (d *dev) Close() error     { return nil }
func (d *dev) Size() int64      { return d.p.SlotSize }
func (d *dev) DropCache() error { return nil }
