package storage

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"syscall"
)

// deviceOf names the block device a directory lives on, for the log line
// an operator reads after a disk error: the mount's source from
// /proc/self/mountinfo ("/dev/sdb1 on /var/lib/reeve"), or the device
// number when that cannot be read.
func deviceOf(dir string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return "unknown"
	}
	// The kernel's encoding of a device number (major 12 bits split around
	// minor's low 8, as glibc's gnu_dev_major/minor read it).
	dev := uint64(st.Dev)
	major := (dev>>8)&0xfff | (dev>>32)&^uint64(0xfff)
	minor := dev&0xff | (dev>>12)&^uint64(0xff)
	id := fmt.Sprintf("%d:%d", major, minor)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "device " + id
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[2] != id {
			continue
		}
		for i, fl := range fields {
			if fl == "-" && i+2 < len(fields) {
				return fmt.Sprintf("%s on %s (device %s)", fields[i+2], fields[4], id)
			}
		}
	}
	return "device " + id
}
