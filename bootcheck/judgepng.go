package bootcheck

import (
	"bytes"
	"fmt"
)

// JudgePNG judges a screenshot as the hypervisor gives it (PNG, or PPM):
// whether it passed, the rule that decided and why. It has the shape of
// bootpoint.ScreenJudge, so that the manager's boot checks on ESXi judge
// screens by the same rules as Local.
func (r Rules) JudgePNG(b []byte) (passed bool, rule, detail string, err error) {
	img, err := Decode(bytes.NewReader(b))
	if err != nil {
		return false, "", "", fmt.Errorf("bootcheck: the screenshot: %w", err)
	}
	v := Judge(img, r)
	return v.Passed(), string(v.Rule), v.Reason, nil
}
