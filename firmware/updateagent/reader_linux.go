package updateagent

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// PN532 HSU frames (shared/docs/pn532.md §1-§2): a wake-up preamble, then
// GetFirmwareVersion (D4 02), answered by an ACK and D5 03 IC Ver Rev Support.
var (
	pn532Wake   = append([]byte{0x55, 0x55}, make([]byte, 14)...)
	pn532GetFW  = []byte{0x00, 0x00, 0xff, 0x02, 0xfe, 0xd4, 0x02, 0x2a, 0x00}
	pn532FWResp = []byte{0x00, 0x00, 0xff, 0x06, 0xfa, 0xd5, 0x03}
)

// ReaderCheck is the reader self-test of a trial boot, from the board
// wiring baked into the image (/etc/kazasu/board.json): on UART a real
// GetFirmwareVersion exchange with the PN532; on I2C an addressed read of
// its status byte (the chip must ACK 0x24); on SPI that the spidev node
// opens (the PN532's SPI status needs the LSB-first driver; kazasud's own
// self-test covers it).
func ReaderCheck(bus, device string, baud int) Check {
	return Check{Name: "reader " + bus + " " + device, Interval: 2 * time.Second, Run: func(ctx context.Context) error {
		switch bus {
		case "uart":
			_, err := probeUART(ctx, device, baud)
			return err
		case "i2c":
			return probeI2C(device, 0x24)
		case "spi":
			f, err := os.OpenFile(device, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			return f.Close()
		}
		return fmt.Errorf("unknown reader bus %q", bus)
	}}
}

// probeUART sends GetFirmwareVersion and returns the 4 version bytes.
func probeUART(ctx context.Context, device string, baud int) ([]byte, error) {
	if baud != 115200 {
		return nil, fmt.Errorf("reader probe supports 115200 baud, wiring says %d", baud)
	}
	fd, err := unix.Open(device, unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", device, err)
	}
	defer unix.Close(fd)
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, fmt.Errorf("%s is not a serial port: %w", device, err)
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB | unix.CBAUD | unix.CRTSCTS
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL | unix.B115200
	t.Ispeed, t.Ospeed = unix.B115200, unix.B115200
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, fmt.Errorf("configuring %s: %w", device, err)
	}
	unix.IoctlSetInt(fd, unix.TCFLSH, unix.TCIFLUSH)
	if _, err := unix.Write(fd, append(append([]byte(nil), pn532Wake...), pn532GetFW...)); err != nil {
		return nil, fmt.Errorf("writing to %s: %w", device, err)
	}
	deadline := time.Now().Add(time.Second)
	var got []byte
	buf := make([]byte, 64)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if i := bytes.Index(got, pn532FWResp); i >= 0 && len(got) >= i+len(pn532FWResp)+4 {
			return got[i+len(pn532FWResp) : i+len(pn532FWResp)+4], nil
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(pfd, 100); err != nil && err != unix.EINTR {
			return nil, err
		}
		n, err := unix.Read(fd, buf)
		if n > 0 {
			got = append(got, buf[:n]...)
		}
		if err != nil && err != unix.EAGAIN && err != unix.EINTR {
			return nil, fmt.Errorf("reading %s: %w", device, err)
		}
		if len(got) > 256 {
			break
		}
	}
	return nil, fmt.Errorf("no PN532 firmware version answer on %s (got % x)", device, got)
}

func probeI2C(device string, addr int) error {
	f, err := os.OpenFile(device, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	const i2cSlave = 0x0703
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), i2cSlave, uintptr(addr)); errno != 0 {
		return fmt.Errorf("I2C_SLAVE %#x on %s: %w", addr, device, errno)
	}
	var b [1]byte
	if _, err := f.Read(b[:]); err != nil {
		return fmt.Errorf("no ACK from the PN532 at %#x on %s: %w", addr, device, err)
	}
	return nil
}
