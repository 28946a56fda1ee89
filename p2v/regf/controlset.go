package regf

import (
	"errors"
	"fmt"
)

// CurrentControlSet returns the name of the control set Windows boots
// with, from the SYSTEM hive's Select\Current value ("ControlSet001").
func (h *Hive) CurrentControlSet() (string, error) {
	name, err := h.selectSet("Current")
	if err != nil {
		return "", err
	}
	if _, err := h.Key(name); err != nil {
		return "", fmt.Errorf("Select\\Current names %s: %w", name, err)
	}
	return name, nil
}

func (h *Hive) selectSet(value string) (string, error) {
	k, err := h.Key("Select")
	if err != nil {
		return "", err
	}
	v, err := k.Value(value)
	if err != nil {
		return "", err
	}
	n, err := v.DWORD()
	if err != nil {
		return "", err
	}
	if n == 0 || n > 999 {
		return "", fmt.Errorf("%w: Select\\%s = %d", ErrCorrupt, value, n)
	}
	return fmt.Sprintf("ControlSet%03d", n), nil
}

// ControlSets returns the distinct control sets named by Select\Current,
// Default and LastKnownGood that exist in the hive, in that order. A
// fixup that must survive a "Last Known Good" boot patches all of them.
func (h *Hive) ControlSets() ([]string, error) {
	cur, err := h.CurrentControlSet()
	if err != nil {
		return nil, err
	}
	out := []string{cur}
	for _, v := range []string{"Default", "LastKnownGood"} {
		name, err := h.selectSet(v)
		if err == nil {
			_, err = h.Key(name)
		}
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		dup := false
		for _, o := range out {
			dup = dup || o == name
		}
		if !dup {
			out = append(out, name)
		}
	}
	return out, nil
}
