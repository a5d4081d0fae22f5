//go:build !unix

package roomstore

import (
	"fmt"
	"os"
	"runtime"
)

// lockDir refuses to run where this package has no directory lock: an
// unlocked store shared by two processes would be corrupted silently.
func lockDir(dir string) (*os.File, error) {
	return nil, fmt.Errorf("roomstore: directory locking is not implemented on %s", runtime.GOOS)
}
