package bootpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/standbykit/standbykit/internal/hosttext"
)

// maxGuestText bounds a string a guest reports through the hypervisor.
const maxGuestText = 256

// Verdicts of a boot check.
const (
	BootPassed   = "passed"
	BootFailed   = "failed"
	BootTimedOut = "timed-out"
)

// ScreenJudge decides from a console screenshot (PNG) whether a machine
// booted: passed, and which rule decided and why (package bootcheck has
// the rules; bootcheck.Rules.JudgePNG fits).
type ScreenJudge func(png []byte) (passed bool, rule, detail string, err error)

// BootCheckOptions configures Standby.CheckBoot. Zero values are the
// defaults.
type BootCheckOptions struct {
	// Network is the port group of the clone's NIC: an isolated one, so
	// that the clone never meets the live server's network; "" leaves the
	// NIC as the snapshot recorded it, disconnected.
	Network string
	// ToolsWait is how long a green heartbeat of the guest's VMware Tools
	// is waited for; 0 means 5 minutes. Without it, the screenshot
	// decides.
	ToolsWait time.Duration
	// Settle is how long after power-on the screenshot is taken when the
	// Tools never answered (a guest without them); 0 means 3 minutes,
	// counted from power-on, so at most max(ToolsWait, Settle).
	Settle time.Duration
	// Timeout bounds the whole check, clone to clean-up; 0 means 15
	// minutes. A check that runs out of it is BootTimedOut.
	Timeout time.Duration
	// Poll is how often the heartbeat is read; 0 means 5 seconds.
	Poll time.Duration
	// Judge decides from the screenshot; nil: a guest without Tools
	// cannot pass (BootFailed, "no heartbeat and no screen rules").
	Judge ScreenJudge
}

func (o BootCheckOptions) withDefaults() BootCheckOptions {
	if o.ToolsWait <= 0 {
		o.ToolsWait = 5 * time.Minute
	}
	if o.Settle <= 0 {
		o.Settle = 3 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Minute
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	return o
}

// BootCheck is the evidence of one boot check of a boot point.
type BootCheck struct {
	Sequence int       `json:"sequence"`
	Verdict  string    `json:"verdict"` // BootPassed, BootFailed, BootTimedOut
	At       time.Time `json:"at"`
	// Method is how it was decided: "heartbeat" (the guest's Tools
	// answered) or "screenshot".
	Method string `json:"method"`
	// Rule and Detail say what decided: the heartbeat and the OS the
	// guest reported, or the screen rule and its measurements.
	Rule   string `json:"rule,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Screenshot is the console's picture, when one was taken (kept as
	// evidence by the caller; not in JSON).
	Screenshot []byte `json:"-"`
	// ScreenshotFile is where the caller kept it.
	ScreenshotFile string    `json:"screenshotFile,omitempty"`
	Duration       float64   `json:"durationSeconds"`
	Guest          GuestInfo `json:"guest,omitzero"`
}

// GuestInfo is what the guest's Tools reported during a check.
type GuestInfo struct {
	ID       string `json:"id,omitempty"`
	FullName string `json:"fullName,omitempty"`
}

// CheckBoot boots a throwaway linked clone of boot point sequence (-1:
// the newest), never the standby itself, and decides whether it booted:
// a green heartbeat from the guest's VMware Tools passes it at once;
// otherwise, once the settle time has passed, a screenshot of its console
// is judged. The clone is powered off and deleted whatever happened. An
// error means the check could not be made (no clone, no screenshot); a
// machine that did not boot is a BootCheck with BootFailed, and a check
// that ran out of time one with BootTimedOut.
func (s *Standby) CheckBoot(ctx context.Context, sequence int, o BootCheckOptions) (check BootCheck, err error) {
	tb, ok := s.Hypervisor.(TestBooter)
	if !ok {
		return BootCheck{}, fmt.Errorf("%w: boot check (test clones)", ErrUnsupportedOperation)
	}
	obs, ok := s.Hypervisor.(GuestObserver)
	if !ok {
		return BootCheck{}, fmt.Errorf("%w: boot check (guest heartbeat and screenshots)", ErrUnsupportedOperation)
	}
	o = o.withDefaults()
	vm, bp, err := s.bootPoint(ctx, sequence)
	if err != nil {
		return BootCheck{}, err
	}
	start := time.Now()
	res := BootCheck{Sequence: bp.Meta.Sequence, At: start}
	s.emit(Event{Sequence: bp.Meta.Sequence, Step: "bootcheck"})
	checkCtx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	clone, err := tb.CloneForTest(checkCtx, vm, bp.Snapshot, fmt.Sprintf("%s-bootcheck-%04d", vm.Name, bp.Meta.Sequence), o.Network)
	if err != nil {
		return BootCheck{}, err
	}
	defer func() {
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
		defer cancel()
		if cerr := errors.Join(s.Hypervisor.SetPower(bg, clone, false), s.Hypervisor.DestroyVM(bg, clone)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("bootpoint: removing the boot check's clone %s: %w", clone.Name, cerr))
		}
	}()
	res, oerr := s.observeBoot(checkCtx, obs, clone, res, o)
	res.Duration = time.Since(start).Seconds()
	switch {
	case oerr != nil && errors.Is(oerr, context.DeadlineExceeded) && ctx.Err() == nil:
		res.Verdict, res.Rule, res.Detail = BootTimedOut, "timeout", fmt.Sprintf("no verdict within %s", o.Timeout)
	case oerr != nil:
		return BootCheck{}, oerr
	}
	s.logger().Info("bootpoint: boot check", "vm", vm.Name, "sequence", res.Sequence, "verdict", res.Verdict, "method", res.Method, "rule", res.Rule)
	return res, nil
}

// observeBoot powers the clone on and waits for the verdict.
func (s *Standby) observeBoot(ctx context.Context, obs GuestObserver, clone VM, res BootCheck, o BootCheckOptions) (BootCheck, error) {
	if err := s.Hypervisor.SetPower(ctx, clone, true); err != nil {
		return res, err
	}
	on := time.Now()
	for {
		st, err := obs.GuestStatus(ctx, clone)
		if err != nil {
			return res, err
		}
		res.Guest = GuestInfo{ID: st.GuestID, FullName: st.GuestFullName}
		if st.ToolsRunning && st.Heartbeat == "green" {
			res.Verdict, res.Method, res.Rule = BootPassed, "heartbeat", "tools-heartbeat"
			res.Detail = "VMware Tools heartbeat green"
			if st.GuestFullName != "" {
				res.Detail += "; guest OS " + hosttext.Clip(st.GuestFullName, maxGuestText)
			}
			return res, nil
		}
		waited := time.Since(on)
		if waited >= o.Settle && (waited >= o.ToolsWait || !st.ToolsRunning) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(o.Poll):
		}
	}
	png, err := obs.Screenshot(ctx, clone)
	if err != nil {
		return res, err
	}
	res.Screenshot, res.Method = png, "screenshot"
	if o.Judge == nil {
		res.Verdict, res.Rule, res.Detail = BootFailed, "no-rules", "no heartbeat, and no screen rules to judge the screenshot"
		return res, nil
	}
	passed, rule, detail, err := o.Judge(png)
	if err != nil {
		return res, fmt.Errorf("bootpoint: judging the screenshot: %w", err)
	}
	res.Rule, res.Detail = rule, detail
	res.Verdict = BootFailed
	if passed {
		res.Verdict = BootPassed
	}
	return res, nil
}
