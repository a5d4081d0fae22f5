package node

import (
	"fmt"
	"time"
)

// Bounds of the automatic rotation flags. The prepublish and grace bounds
// are keys.rotate's own (checked again there), refused here at start so a
// node never runs with a rotation every attempt of which would fail.
const (
	minKeyRotationInterval = time.Second
	maxKeyRotationPrepub   = 30 * 24 * time.Hour
	maxKeyRotationGrace    = 365 * 24 * time.Hour
)

// validateKeyRotation checks the --key-rotation-* flags, naming each.
func (c *Config) validateKeyRotation() []error {
	var errs []error
	iv, pre, grace := c.KeyRotationInterval, c.KeyRotationPrepublish, c.KeyRotationGrace
	if iv < 0 || (iv > 0 && iv < minKeyRotationInterval) {
		errs = append(errs, fmt.Errorf("--key-rotation-interval %s: must be 0 (off) or at least %s", iv, minKeyRotationInterval))
	}
	switch {
	case pre < 0 || pre > maxKeyRotationPrepub:
		errs = append(errs, fmt.Errorf("--key-rotation-prepublish %s: must be between 0 and %s", pre, maxKeyRotationPrepub))
	case iv > 0 && pre >= iv:
		errs = append(errs, fmt.Errorf("--key-rotation-prepublish %s: must be shorter than --key-rotation-interval %s (a key is prepublished before the next rotation is due)", pre, iv))
	}
	if grace < 0 || grace > maxKeyRotationGrace {
		errs = append(errs, fmt.Errorf("--key-rotation-grace %s: must be between 1ms and %s", grace, maxKeyRotationGrace))
	}
	return errs
}
