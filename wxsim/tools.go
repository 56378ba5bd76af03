package wxsim

import (
	"strings"

	"github.com/wxpay-go/wxpay"
)

// shortURL serves /tools/shorturl (protocol.md §5.10). long_url arrives
// URL-encoded and was signed raw; the pipeline decoded it before checking
// the signature.
func (s *Simulator) shortURL(c *call) result {
	if res, good := s.checkFields(c, []fieldRule{{"long_url", 512, true}}); !good {
		return res
	}
	long := c.get("long_url")
	if !strings.HasPrefix(long, "weixin://wxpay/bizpayurl?") {
		return bizErr("PARAM_ERROR", "long_url参数错误：须为weixin://wxpay/bizpayurl?开头的Native支付链接")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for short, l := range s.shortURLs {
		if l == long {
			return ok(field("short_url", short))
		}
	}
	short := "weixin://wxpay/s/" + s.ids.NewID(IDShortURL, c.now)
	s.shortURLs[short] = long
	return ok(field("short_url", short))
}

var reportRules = []fieldRule{
	{"interface_url", 127, true},
	{"execute_time_", 10, true},
	{"return_code", 16, true},
	{"result_code", 16, true},
	{"user_ip", 16, true},
	{"device_info", 32, false},
	{"return_msg", 128, false},
	{"err_code", 32, false},
	{"err_code_des", 128, false},
	{"out_trade_no", 32, false},
	{"time", 14, false},
}

// report serves /payitil/report (protocol.md §5.11): it checks the fields
// and counts the report. The answer is return_code, return_msg and
// result_code, unsigned.
func (s *Simulator) report(c *call) result {
	if res, good := s.checkFields(c, reportRules); !good {
		return res
	}
	if !isDigits(c.get("execute_time_")) {
		return bizErr("PARAM_ERROR", "execute_time_参数错误")
	}
	s.mu.Lock()
	s.reports++
	s.mu.Unlock()
	return ok(field("result_code", wxpay.Success))
}

// Reports returns how many /payitil/report calls were accepted.
func (s *Simulator) Reports() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reports
}

// getSignKey serves the sandbox's getsignkey (protocol.md §1.1): signed
// with the production API key (MD5), it answers the sandbox key.
func (s *Simulator) getSignKey(c *call) result {
	return ok(field("mch_id", c.m.cfg.MchID), field("sandbox_signkey", c.m.sandboxKey))
}
