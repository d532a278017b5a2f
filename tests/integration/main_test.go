package integration

import (
	"os"
	"testing"
)

// TestMain removes what the suite shares between tests (the test images).
func TestMain(m *testing.M) {
	code := m.Run()
	if testImagesDir != "" {
		os.RemoveAll(testImagesDir)
	}
	os.Exit(code)
}
