package loadtest

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wxpay-go/wxpay/wxsim"
)

// FaultSpec is one fault of --faults: what the simulator does to a share
// (Rate) or a number (Count) of the calls of one API while the load runs.
type FaultSpec struct {
	API     string          // a wxsim.FaultAPIs name: unifiedorder, orderquery, … or notify
	Kind    wxsim.FaultKind // SYSTEMERROR, DROP_AFTER_COMMIT, DELAY, DUPLICATE …
	Rate    float64         // in (0, 1): the probability that a call is hit; 0 with Count
	Count   int             // with no Rate: the next Count calls are hit
	Delay   time.Duration   // DELAY, NOTIFY_DELAY
	ErrCode string          // ERR_CODE
}

// String writes the spec back in the --faults syntax.
func (f FaultSpec) String() string {
	s := f.API + ":" + string(f.Kind) + ":"
	if f.Rate > 0 {
		s += strconv.FormatFloat(f.Rate, 'g', -1, 64)
	} else {
		s += "x" + strconv.Itoa(f.Count)
	}
	switch {
	case f.Delay > 0:
		s += ":" + f.Delay.String()
	case f.ErrCode != "":
		s += ":" + f.ErrCode
	}
	return s
}

// ParseFaults reads the --faults syntax: comma-separated
// API:KIND:HOW[:ARG], where HOW is a probability in (0, 1) ("0.02": each
// call is hit with that probability) or a count ("x5" or "5": the next
// five calls), and ARG is the delay of DELAY and NOTIFY_DELAY ("300ms",
// "7s": longer than the merchant's 6 s timeout makes a real timeout) or
// the err_code of ERR_CODE. The API "notify" takes the notify kinds
// (DUPLICATE, DROP, NOTIFY_DELAY, BAD_SIGNATURE, REORDER) and then HOW is
// the share of payments whose notify is hit.
//
//	unifiedorder:SYSTEMERROR:0.02,orderquery:DROP_AFTER_COMMIT:0.01,refund:DELAY:0.05:300ms,notify:DROP:0.01
func ParseFaults(spec string) ([]FaultSpec, error) {
	var out []FaultSpec
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		parts := strings.Split(item, ":")
		if len(parts) < 3 || len(parts) > 4 {
			return nil, fmt.Errorf("fault %q: want API:KIND:RATE[:ARG], e.g. unifiedorder:SYSTEMERROR:0.02", item)
		}
		f := FaultSpec{API: strings.ToLower(strings.TrimSpace(parts[0])),
			Kind: wxsim.FaultKind(strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(parts[1]), "-", "_")))}
		if !slices.Contains(wxsim.FaultAPIs, f.API) {
			return nil, fmt.Errorf("fault %q: unknown API %q (one of %s)", item, f.API, strings.Join(wxsim.FaultAPIs, ", "))
		}
		if f.API == "notify" && f.Kind == wxsim.FaultDelay {
			f.Kind = wxsim.FaultNotifyDelay
		}
		how := strings.TrimSpace(parts[2])
		if n, ok := strings.CutPrefix(how, "x"); ok || !strings.Contains(how, ".") {
			c, err := strconv.Atoi(n)
			if err != nil || c < 1 {
				return nil, fmt.Errorf("fault %q: %q is neither a probability in (0, 1) nor a count ≥ 1", item, how)
			}
			f.Count = c
		} else {
			r, err := strconv.ParseFloat(how, 64)
			if err != nil || r <= 0 || r >= 1 {
				return nil, fmt.Errorf("fault %q: the rate %q must be in (0, 1)", item, how)
			}
			f.Rate = r
		}
		arg := ""
		if len(parts) == 4 {
			arg = strings.TrimSpace(parts[3])
		}
		switch f.Kind {
		case wxsim.FaultDelay, wxsim.FaultNotifyDelay:
			d, err := time.ParseDuration(arg)
			if err != nil || d <= 0 {
				return nil, fmt.Errorf("fault %q: %s needs a positive delay as its 4th part, e.g. 300ms", item, f.Kind)
			}
			f.Delay = d
		case wxsim.FaultErrCode:
			if arg == "" {
				return nil, fmt.Errorf("fault %q: ERR_CODE needs the err_code as its 4th part, e.g. BIZERR_NEED_RETRY", item)
			}
			f.ErrCode = arg
		default:
			if arg != "" {
				return nil, fmt.Errorf("fault %q: %s takes no 4th part", item, f.Kind)
			}
		}
		if err := f.validate(); err != nil {
			return nil, fmt.Errorf("fault %q: %w", item, err)
		}
		out = append(out, f)
	}
	return out, nil
}

// validate asks the simulator whether it takes the fault, on a throwaway
// simulator (its rules live there).
func (f FaultSpec) validate() error {
	if f.API == "notify" {
		switch f.Kind {
		case wxsim.FaultNotifyDuplicate, wxsim.FaultNotifyDrop, wxsim.FaultNotifyDelay, wxsim.FaultNotifyBadSignature, wxsim.FaultNotifyReorder:
			return nil
		}
		return fmt.Errorf("the notify API takes DUPLICATE, DROP, NOTIFY_DELAY, BAD_SIGNATURE or REORDER, not %s", f.Kind)
	}
	sim, err := wxsim.New(wxsim.Config{})
	if err != nil {
		return err
	}
	defer sim.Close()
	return sim.InjectFault(f.fault(1))
}

func (f FaultSpec) fault(count int) wxsim.Fault {
	return wxsim.Fault{API: f.API, Kind: f.Kind, Count: count, Delay: f.Delay, ErrCode: f.ErrCode}
}

// ChaosFaults is the fault set of --chaos: SYSTEMERROR and lost answers
// (the merchant sees a reset connection: a timeout's unknown outcome) on
// every call the service makes, a few slow answers, and a few real
// timeouts (7 s, past the merchant's 6 s) on the query.
const ChaosFaults = "unifiedorder:SYSTEMERROR:0.02,unifiedorder:DROP_AFTER_COMMIT:0.01," +
	"orderquery:SYSTEMERROR:0.02,orderquery:DELAY:0.002:7s," +
	"closeorder:SYSTEMERROR:0.05,refund:DROP_AFTER_COMMIT:0.05,refund:SYSTEMERROR:0.02," +
	"refundquery:SYSTEMERROR:0.02,jscode2session:SYSTEMERROR:0.01,notify:DROP:0.01"
