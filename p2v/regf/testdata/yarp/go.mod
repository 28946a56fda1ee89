// This folder is a module of its own only so that the files in it, which
// are under the GNU GPL version 3 (see ../README.md), stay out of the
// standbykit module that users download: the tests that use them run in a
// checkout of the repository and skip where the files are absent.
module github.com/standbykit/standbykit/p2v/regf/testdata/yarp

go 1.24
