package fofi_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them. Tests
// that run inside a testing/synctest bubble get a stricter check for free:
// the bubble fails the test if a goroutine started in it is left blocked.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
