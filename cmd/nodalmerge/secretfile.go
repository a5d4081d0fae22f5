package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// writeSecretFile writes a new secret (a seed, a key-encryption key) to
// out with mode 0600, flushed to disk. It never overwrites: an existing
// file is an error naming --out, since overwriting a key loses whatever it
// protected. A failed write removes the partial file. what names the
// secret in errors ("the seed").
func writeSecretFile(out string, data []byte, what string) error {
	fh, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("--out %s: file exists; choose another name (an existing key is never overwritten)", out)
		}
		return fmt.Errorf("--out: %w", err)
	}
	_, werr := fh.Write(data)
	if werr == nil {
		werr = fh.Sync()
	}
	if cerr := fh.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(out)
		return fmt.Errorf("--out %s: write %s: %w", out, what, werr)
	}
	return nil
}
