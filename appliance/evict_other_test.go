//go:build !(linux && (amd64 || arm64))

package appliance_test

import "errors"

const canEvict = false

func evictCache(string) error {
	return errors.New("evicting the page cache needs posix_fadvise (linux/amd64, linux/arm64)")
}
