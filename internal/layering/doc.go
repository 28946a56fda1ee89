// Package layering holds the test that keeps the module's packages in
// their layers (DESIGN: no package below bootpoint knows about ESXi, no
// package but esx imports govmomi, and a product importing esx does not
// link the simulator).
package layering
