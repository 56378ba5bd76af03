package merchant

// Product is an item of the catalog. Prices are set on the server; a client
// names products by SKU and quantity, never by price.
type Product struct {
	SKU   string `json:"sku"`
	Name  string `json:"name"`
	Price int64  `json:"price"` // fen, > 0
}

// Item is a line of an order: a product, a quantity and the unit price the
// server charged.
type Item struct {
	SKU       string `json:"sku"`
	Name      string `json:"name"`
	Quantity  int64  `json:"quantity"`
	UnitPrice int64  `json:"unit_price"` // fen
}

// CartLine is what a client asks for: a SKU and a quantity.
type CartLine struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Limits on an order, so that amounts stay far from overflow and from
// WeChat's own limits.
const (
	MaxQuantity   = 999
	MaxLines      = 50
	MaxOrderTotal = 100_000_000 // fen: 1,000,000 CNY
)

// Catalog is the set of products for sale, by SKU.
type Catalog map[string]Product

// Price computes the items and the total of a cart from the catalog, in
// int64 fen. Unknown SKUs, quantities outside 1..MaxQuantity, empty carts
// and totals above MaxOrderTotal are refused.
func (c Catalog) Price(cart []CartLine) ([]Item, int64, error) {
	if len(cart) == 0 {
		return nil, 0, Errorf(EINVALID, "the cart is empty")
	}
	if len(cart) > MaxLines {
		return nil, 0, Errorf(EINVALID, "at most %d lines per order", MaxLines)
	}
	items := make([]Item, 0, len(cart))
	var total int64
	for _, l := range cart {
		p, ok := c[l.SKU]
		if !ok {
			return nil, 0, Errorf(EINVALID, "unknown sku %q", l.SKU)
		}
		if l.Quantity < 1 || l.Quantity > MaxQuantity {
			return nil, 0, Errorf(EINVALID, "quantity of %q must be 1 to %d", l.SKU, MaxQuantity)
		}
		if p.Price <= 0 {
			return nil, 0, Errorf(EINVALID, "sku %q has no valid price", l.SKU)
		}
		line := p.Price * l.Quantity // both bounded: no overflow
		total += line
		if total > MaxOrderTotal {
			return nil, 0, Errorf(EINVALID, "order total above %d fen", MaxOrderTotal)
		}
		items = append(items, Item{SKU: p.SKU, Name: p.Name, Quantity: l.Quantity, UnitPrice: p.Price})
	}
	return items, total, nil
}
