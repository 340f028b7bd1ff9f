// Binary crashinit is a PID 1 that dies at once: the "new init crashes"
// release of the qemu rollback scenario (firmware/vmtest). The kernel
// panics, panic=10 resets the board, and the firmware, its tryboot flag
// consumed, boots the committed slot.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "crashinit: exiting as PID 1 on purpose (rollback test)")
	os.Exit(3)
}
