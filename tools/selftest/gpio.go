package selftest

import (
	"context"
	"fmt"
	"time"

	"periph.io/x/conn/v3/gpio"
	"periph.io/x/conn/v3/gpio/gpioreg"
	"periph.io/x/host/v3"
)

// HostGPIO returns the machine's GPIO lines (periph.io: the Pi's
// /dev/gpiomem or the gpio character device), or an error wrapping
// ErrNoGPIO on a machine without them.
func HostGPIO() (GPIO, error) {
	if _, err := host.Init(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoGPIO, err)
	}
	if len(gpioreg.All()) == 0 {
		return nil, fmt.Errorf("%w: no GPIO controller found", ErrNoGPIO)
	}
	return hostGPIO{}, nil
}

type hostGPIO struct{}

func (hostGPIO) Pulse(ctx context.Context, line string, d time.Duration) error {
	p := gpioreg.ByName(line)
	if p == nil {
		return fmt.Errorf("%s: %w", line, ErrNoGPIO)
	}
	for _, lv := range []gpio.Level{gpio.High, gpio.Low} {
		if err := p.Out(lv); err != nil {
			return fmt.Errorf("driving %s %s: %w", line, lv, err)
		}
		if got := p.Read(); got != lv {
			return fmt.Errorf("%s reads %s while driven %s (shorted or held by another driver?)", line, got, lv)
		}
		if lv == gpio.High {
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				p.Out(gpio.Low)
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return nil
}
