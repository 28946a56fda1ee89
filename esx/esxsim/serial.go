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
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
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

// serialize takes the call lock; the function it returns, deferred,
// waits for the tasks started meanwhile and releases it (at once if the
// call panicked: vcsim has panics of its own, and net/http goes on after
// them).
func (s *Simulator) serialize() (release func()) {
	s.calls.Lock()
	return func() {
		if p := recover(); p != nil {
			s.calls.Unlock()
			panic(p)
		}
		s.tasks.await(taskWait, s.logf)
		s.calls.Unlock()
	}
}

// taskWait bounds how long a call holds the simulator for its tasks.
const taskWait = time.Minute

// runningTasks hears from vcsim's registry (as a handler of its object
// changes) which tasks are running. Under the call lock, those are the
// current call's: the tasks of earlier calls ended before their calls
// released it. A task that starts another (ImportVApp's creates the VM)
// waits for it. A task a client made with CreateTask is not counted until
// that client sets it running.
type runningTasks struct {
	mu      sync.Mutex
	running map[types.ManagedObjectReference]bool
}

func (*runningTasks) Reference() types.ManagedObjectReference {
	return types.ManagedObjectReference{Type: "EsxsimRunningTasks", Value: "esxsim"}
}

func (*runningTasks) PutObject(*simulator.Context, mo.Reference) {}

func (rt *runningTasks) UpdateObject(_ *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	t, ok := obj.(*mo.Task)
	if !ok || !slices.ContainsFunc(changes, func(c types.PropertyChange) bool { return c.Name == "info.state" }) {
		return
	}
	// vcsim calls this under the task's lock, after applying the changes.
	running := t.Info.State == types.TaskInfoStateRunning
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.running == nil {
		rt.running = map[types.ManagedObjectReference]bool{}
	}
	if running {
		rt.running[t.Self] = true
	} else {
		delete(rt.running, t.Self)
	}
}

func (rt *runningTasks) RemoveObject(_ *simulator.Context, ref types.ManagedObjectReference) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	delete(rt.running, ref)
}

// await waits until no task runs, or for at most limit: a task still
// running then is left running, with a warning, rather than holding
// every other client.
func (rt *runningTasks) await(limit time.Duration, logf func(string, ...any)) {
	deadline := time.Now().Add(limit)
	for {
		rt.mu.Lock()
		n := len(rt.running)
		rt.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			logf("esxsim: %d tasks still running after %v: letting other calls in", n, limit)
			return
		}
		time.Sleep(time.Millisecond)
	}
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
