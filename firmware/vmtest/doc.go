// Package vmtest holds the qemu scenarios of the A/B update protocol: the
// qemu image (fwbuild -board qemu, generic arm64 kernel from
// github.com/gokrazy/kernel.arm64) is booted by direct kernel boot with
// -no-reboot, so every guest reset ends qemu and the test harness plays
// the Raspberry Pi firmware between boots: it reads config.txt or, when
// the one-shot flag is set, tryboot.txt from the boot FAT, takes the
// command line they name (cmdline.txt / cmdline-try.txt), clears the flag
// and boots again. The flag lives on a small second virtio disk that the
// agent's VM platform writes.
//
// Scenarios (TestUpdateScenarios): replayed bundle refused; failed health
// check → rollback; crashing init → rollback; hung agent → kazasu-init's
// trial guard → rollback; qemu killed in the middle of
// the slot write → the old slot boots; good update → commit; replay after
// the commit refused.
//
// They need qemu-system-aarch64 (Debian qemu-system-arm), mksquashfs and
// mke2fs; without them they skip, unless KAZASU_REQUIRE_TOOLS=1. They are
// skipped under -short.
package vmtest
