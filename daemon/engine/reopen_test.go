package engine_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"kazasu/daemon/api"
	"kazasu/daemon/engine"
	"kazasu/drivers/nfc"
	"kazasu/drivers/reader"
	"kazasu/drivers/sim/card"
	"kazasu/drivers/sim/pn532emu"
	"kazasu/drivers/sim/rf"
)

// usbReader is a PN532 on a serial device that can be unplugged and
// plugged back in (the emulator on a pty behind a fixed symlink).
type usbReader struct {
	link   string
	field  *rf.Field
	cancel context.CancelFunc
	done   chan struct{}
	pty    *pn532emu.PTY
}

func (u *usbReader) plug(t *testing.T) {
	t.Helper()
	p, err := pn532emu.OpenPTY(u.link)
	if err != nil {
		t.Fatal(err)
	}
	// A reader that was unplugged comes back with its RF field off: every
	// card in it has lost power.
	u.field.SetOn(false)
	emu := pn532emu.New(pn532emu.Options{Field: u.field})
	ctx, cancel := context.WithCancel(context.Background())
	u.pty, u.cancel, u.done = p, cancel, make(chan struct{})
	go func() { emu.ServePTY(ctx, p); close(u.done) }()
}

func (u *usbReader) unplug() {
	u.cancel()
	<-u.done
	u.pty.Close() // removes the symlink: the device node is gone
}

// TestReaderUnpluggedAndBack: the serial PN532 vanishes between two
// transactions; the worker reports it offline, re-opens it when it is back,
// and the next transaction succeeds.
func TestReaderUnpluggedAndBack(t *testing.T) {
	tok := newToken(t, card.KindMyNumber, card.Options{})
	u := &usbReader{link: filepath.Join(t.TempDir(), "ttyUSB0"), field: &rf.Field{}}
	u.field.Add(tok)
	u.plug(t)
	h := newHarnessReaders(t, []engine.Reader{{Name: "usb0", Open: func(ctx context.Context) (nfc.Reader, error) {
		return reader.Open(ctx, "pn532_uart:"+u.link+":115200", reader.Options{})
	}}})
	run := func() {
		t.Helper()
		st, err := h.eng.Start(context.Background(), "usb0", "juminhyo")
		if err != nil {
			t.Fatal(err)
		}
		ch, stop, _ := h.eng.Subscribe(st.ID)
		defer stop()
		w := &watcher{ch: ch, cancel: stop}
		w.until(t, api.StatePINRequired)
		if err := h.eng.SubmitPIN(context.Background(), st.ID, []byte("1234")); err != nil {
			t.Fatal(err)
		}
		w.until(t, api.StateDone)
		w.final(t)
	}
	run()
	u.unplug()
	// Idle, the worker notices the reader is gone (its periodic check).
	waitOffline := time.Now().Add(20 * time.Second)
	for h.eng.Readers(context.Background())[0].State != api.ReaderOffline {
		if time.Now().After(waitOffline) {
			t.Fatal("reader never reported offline")
		}
		time.Sleep(10 * time.Millisecond)
	}
	u.plug(t)
	defer u.unplug()
	waitReady := time.Now().Add(30 * time.Second)
	for h.eng.Readers(context.Background())[0].State != api.ReaderReady {
		if time.Now().After(waitReady) {
			t.Fatalf("reader not re-opened: %+v", h.eng.Readers(context.Background()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	run()
}
