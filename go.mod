module github.com/standbykit/standbykit

go 1.26.0

require github.com/stretchr/testify v1.12.1

require (
	github.com/pierrec/lz4/v4 v4.1.33 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
