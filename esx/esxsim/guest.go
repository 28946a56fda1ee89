package esxsim

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"regexp"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// GuestBehaviour is how the guest of a VM the simulator powers on behaves
// (the writer appliance aside), for boot checks: what its VMware Tools
// report and what its console shows.
type GuestBehaviour struct {
	// Tools: VMware Tools run in the guest: the heartbeat turns green and
	// the guest reports GuestFullName (its configured guest ID's name if
	// empty).
	Tools         bool
	GuestFullName string
	// Screen is what the console shows, for CreateScreenshot_Task (nil:
	// a black screen).
	Screen image.Image
	// Stuck: the screenshot task never ends (a host agent that hangs),
	// until the caller gives up.
	Stuck bool
}

// DefaultGuest is the behaviour of every guest unless SetGuestBehaviour
// says otherwise: Tools run, and the console shows a text screen.
func DefaultGuest(vmName string) GuestBehaviour {
	return GuestBehaviour{Tools: true, Screen: TextScreen(40)}
}

// SetGuestBehaviour sets how the guests of VMs powered on from now on
// behave; f is given the VM's name. nil restores DefaultGuest.
func (s *Simulator) SetGuestBehaviour(f func(vmName string) GuestBehaviour) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.guest = f
}

func (s *Simulator) guestOf(name string) GuestBehaviour {
	s.faultMu.Lock()
	f := s.guest
	s.faultMu.Unlock()
	if f == nil {
		f = DefaultGuest
	}
	return f(name)
}

// TextScreen is a 720×400 console (a text-mode screen's size) with lines
// rows of grey "text" on black: a booted system's console when lines is
// large, a boot loader's error message when it is one or two.
func TextScreen(lines int) image.Image {
	img := image.NewRGBA(image.Rect(0, 0, 720, 400))
	for y := range 400 {
		for x := range 720 {
			img.Set(x, y, color.Black)
		}
	}
	for row := range min(lines, 25) {
		for y := row*16 + 3; y < row*16+13; y++ {
			for x := 0; x < 720; x++ {
				// Characters of 9 pixels with gaps, words of varying length.
				if x%9 < 7 && (x/9)%(5+row%4) != 0 && (x*7+y*3+row)%5 != 0 {
					img.Set(x, y, color.Gray{Y: 0xaa})
				}
			}
		}
	}
	return img
}

// startGuest applies the behaviour of vm's guest at power-on; the caller
// holds vm's lock.
func (s *Simulator) startGuest(vm *simulator.VirtualMachine, b GuestBehaviour) {
	if !b.Tools {
		vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsNotRunning)
		vm.GuestHeartbeatStatus = types.ManagedEntityStatusGray
		return
	}
	name := b.GuestFullName
	if name == "" {
		name = vm.Config.GuestFullName
	}
	if name == "" {
		name = vm.Config.GuestId
	}
	vm.Guest.ToolsRunningStatus = string(types.VirtualMachineToolsRunningStatusGuestToolsRunning)
	vm.Guest.ToolsStatus = types.VirtualMachineToolsStatusToolsOk
	vm.Guest.GuestState = "running"
	vm.Guest.GuestId = vm.Config.GuestId
	vm.Guest.GuestFullName = name
	vm.GuestHeartbeatStatus = types.ManagedEntityStatusGreen
	vm.Summary.QuickStats.GuestHeartbeatStatus = types.ManagedEntityStatusGreen
}

var screenshotCall = regexp.MustCompile(`(?s)<CreateScreenshot_Task([^>]*)>(.*)</CreateScreenshot_Task>`)

// serveScreenshot answers CreateScreenshot_Task, which vcsim lacks: vcsim
// runs an empty reconfiguration of the VM as the task, and the
// screenshot's PNG (the guest's Screen) is written into the VM's folder
// and made the task's result before the answer is released.
func (s *Simulator) serveScreenshot(w http.ResponseWriter, r *http.Request, body []byte, vmRef string) {
	ref := types.ManagedObjectReference{Type: "VirtualMachine", Value: vmRef}
	vm, ok := s.model.Map().Get(ref).(*simulator.VirtualMachine)
	if !ok {
		writeFault(w, "esxsim: no VM "+vmRef)
		return
	}
	var name, vmx string
	var state types.VirtualMachinePowerState
	s.model.Map().WithLock(s.lockOwner, vm, func() {
		name, vmx, state = vm.Name, vm.Config.Files.VmPathName, vm.Runtime.PowerState
	})
	if state != types.VirtualMachinePowerStatePoweredOn {
		writeFault(w, "esxsim: VM "+name+" is not powered on: no console to take a screenshot of")
		return
	}
	b := s.guestOf(name)
	if b.Stuck {
		<-r.Context().Done()
		return
	}
	defer s.serialize()()
	var p object.DatastorePath
	if !p.FromString(vmx) {
		writeFault(w, "esxsim: VM "+name+" has no folder")
		return
	}
	screen := b.Screen
	if screen == nil {
		screen = TextScreen(0)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, screen); err != nil {
		writeFault(w, err.Error())
		return
	}
	s.faultMu.Lock()
	s.screenshots++
	n := s.screenshots
	s.faultMu.Unlock()
	file := object.DatastorePath{Datastore: p.Datastore, Path: path.Join(path.Dir(p.Path), fmt.Sprintf("%s-%d.png", name, n))}
	local, err := s.localPath(file.String())
	if err == nil {
		err = os.WriteFile(local, buf.Bytes(), 0o644)
	}
	if err != nil {
		writeFault(w, err.Error())
		return
	}
	reconfig := screenshotCall.ReplaceAll(body, []byte(`<ReconfigVM_Task$1>$2<spec></spec></ReconfigVM_Task>`))
	r2 := r.Clone(r.Context())
	r2.Body = readCloser(reconfig)
	r2.ContentLength = int64(len(reconfig))
	rec := httptest.NewRecorder()
	s.Service.ServeSDK(rec, r2)
	out := rec.Body.Bytes()
	if task := soapTask.FindSubmatch(out); task != nil {
		tref := types.ManagedObjectReference{Type: "Task", Value: string(task[1])}
		if s.waitTask(tref) {
			if t, ok := s.model.Map().Get(tref).(*simulator.Task); ok {
				s.model.Map().WithLock(s.lockOwner, t, func() { t.Info.Result = file.String() })
			}
		}
	}
	out = bytes.ReplaceAll(out, []byte("ReconfigVM_TaskResponse"), []byte("CreateScreenshot_TaskResponse"))
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.Header().Del("Content-Length")
	w.WriteHeader(rec.Code)
	_, _ = w.Write(out)
}

// ScreenshotCount is how many screenshots the simulator took.
func (s *Simulator) ScreenshotCount() int {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.screenshots
}

func readCloser(b []byte) *bodyReader { return &bodyReader{bytes.NewReader(b)} }

type bodyReader struct{ *bytes.Reader }

func (bodyReader) Close() error { return nil }
