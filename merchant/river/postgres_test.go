package river_test

import (
	"testing"

	"github.com/wxpay-go/wxpay/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
