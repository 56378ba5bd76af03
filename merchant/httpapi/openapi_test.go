package httpapi_test

import (
	"bufio"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wxpay-go/wxpay/merchant/httpapi"
)

// openAPIRoutes reads "METHOD /path" pairs from docs/openapi.yaml's paths.
func openAPIRoutes(t *testing.T) ([]string, string) {
	t.Helper()
	data, err := os.ReadFile("../../docs/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pathRe := regexp.MustCompile(`^  (/\S*):\s*$`)
	methodRe := regexp.MustCompile(`^    (get|post|put|patch|delete):\s*$`)
	var routes []string
	inPaths, path := false, ""
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "paths:":
			inPaths = true
		case inPaths && len(line) > 0 && line[0] != ' ':
			inPaths = false
		case inPaths:
			if m := pathRe.FindStringSubmatch(line); m != nil {
				path = m[1]
			} else if m := methodRe.FindStringSubmatch(line); m != nil {
				routes = append(routes, strings.ToUpper(m[1])+" "+path)
			}
		}
	}
	slices.Sort(routes)
	return routes, string(data)
}

// TestOpenAPIMatchesRoutes checks docs/openapi.yaml against the server:
// the same routes both ways, and every JSON field of the answers documented.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t)
	served := e.server.Routes()
	slices.Sort(served)
	documented, doc := openAPIRoutes(t)
	for _, r := range served {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in docs/openapi.yaml", r)
		}
	}
	for _, r := range documented {
		if !slices.Contains(served, r) {
			t.Errorf("docs/openapi.yaml documents %s, which the server does not serve", r)
		}
	}
	// Each wire type's JSON names appear as properties in the document.
	for _, v := range []any{httpapi.LoginResponse{}, httpapi.PayableOrder{}, httpapi.PayParams{}, httpapi.OrderView{},
		httpapi.OrderRefund{}, httpapi.AdminOrder{}, httpapi.AdminOrderList{}, httpapi.AdminRefund{}, httpapi.AdminEvent{},
		httpapi.AdminAnomaly{}, httpapi.AdminOutboxEvent{}, httpapi.AdminOrderDetail{}, httpapi.ReconResult{},
		httpapi.ReconReport{}, httpapi.ReconException{}, httpapi.ErrorBody{}} {
		typ := reflect.TypeOf(v)
		for i := 0; i < typ.NumField(); i++ {
			name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(doc, "\n        "+name+":") {
				t.Errorf("%s.%s (json %q) is not documented in docs/openapi.yaml", typ.Name(), typ.Field(i).Name, name)
			}
		}
	}
}
