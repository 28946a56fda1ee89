package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDemo(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"demo", "--dir", t.TempDir()}, &out))
	require.Equal(t, 7, strings.Count(out.String(), "matches source"), out.String())
	require.NotContains(t, out.String(), "DIFFERS")
}

func TestUsage(t *testing.T) {
	require.ErrorContains(t, run(context.Background(), nil, &bytes.Buffer{}), "usage")
}
