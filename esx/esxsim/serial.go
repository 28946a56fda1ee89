package esxsim

import (
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/vmware/govmomi/simulator"
	simesx "github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25/types"
)

// vcsim runs each call under the lock of the object it is made on, and
// each task in a goroutine of its own under the lock of the task's entity.
// Parts of it read other objects without their locks (FindChild reads the
// names of a folder's children; serving a datastore file copies the whole
// datastore object) while the task of another call writes them: data
// races, which the race detector reports in tests that drive the
// simulator from several clients at once. So esxsim lets one call at a
// time change the model: a call holds the simulator's call lock until
// every task it started has ended, the tasks those tasks started
// included. Clients still run concurrently, and their calls interleave as
// they would on ESXi; only vcsim's work inside them is serialized.
//
// Long polls (WaitForUpdates, WaitForUpdatesEx) are the exception: they
// would hold the lock for up to their timeout, and vcsim's property
// collector reads the objects it reports under their locks.
var longPoll = regexp.MustCompile(`<(WaitForUpdatesEx|WaitForUpdates|CancelWaitForUpdates)[\s>]`)

// serialize takes the call lock; the function it returns waits for the
// tasks started meanwhile and releases it.
func (s *Simulator) serialize() (release func()) {
	s.calls.Lock()
	return func() {
		s.awaitTasks()
		s.calls.Unlock()
	}
}

// awaitTasks waits until no task vcsim knows of is queued or running.
// Under the call lock only the current call's tasks can be: the tasks of
// earlier calls ended before their calls released it. A task that starts
// another (ImportVApp's creates the VM) waits for it, so the list is read
// again until a pass finds every task ended.
func (s *Simulator) awaitTasks() {
	reg := s.model.Map()
	tm, ok := reg.Get(*simesx.ServiceContent.TaskManager).(*simulator.TaskManager)
	if !ok {
		return
	}
	for {
		var recent []types.ManagedObjectReference
		reg.WithLock(s.lockOwner, tm, func() { recent = slices.Clone(tm.RecentTask) })
		waited := false
		for _, ref := range recent {
			if s.taskRunning(ref) {
				s.waitTask(ref)
				waited = true
			}
		}
		if !waited {
			return
		}
	}
}

// taskRunning tells whether a task is queued or running.
func (s *Simulator) taskRunning(ref types.ManagedObjectReference) bool {
	reg := s.model.Map()
	t, ok := reg.Get(ref).(*simulator.Task)
	if !ok {
		return false
	}
	var state types.TaskInfoState
	reg.WithLock(s.lockOwner, t, func() { state = t.Info.State })
	return state == types.TaskInfoStateQueued || state == types.TaskInfoStateRunning
}

// serveFolder serves the datastore's files over /folder as ESXi does
// (GET with ranges, HEAD, PUT; POST creates a file that does not exist),
// from the simulator's folder. vcsim's own handler reads its datastore
// object without a lock, racing with every task that updates the
// datastore's free space; this one does not touch vcsim's model.
func (s *Simulator) serveFolder(w http.ResponseWriter, r *http.Request) {
	if dsName := r.URL.Query().Get("dsName"); dsName != Datastore {
		http.Error(w, "no datastore "+dsName, http.StatusNotFound)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, "/folder/")
	if strings.Contains(rel, "..") {
		http.Error(w, "path leaves the datastore", http.StatusBadRequest)
		return
	}
	local := filepath.Join(s.Dir, filepath.FromSlash(path.Clean("/"+rel)))
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/" + rel
		http.FileServer(http.Dir(s.Dir)).ServeHTTP(w, r2)
	case http.MethodPost, http.MethodPut:
		flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
		if r.Method == http.MethodPost {
			flags = os.O_WRONLY | os.O_CREATE | os.O_EXCL
		}
		if err := os.MkdirAll(filepath.Dir(local), 0o700); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		f, err := os.OpenFile(local, flags, 0o644)
		if os.IsExist(err) {
			http.Error(w, "file exists", http.StatusConflict)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, err = io.Copy(f, r.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	default:
		http.Error(w, r.Method+" is not served on /folder", http.StatusMethodNotAllowed)
	}
}
