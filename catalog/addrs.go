package catalog

import (
	"errors"
	"net/netip"
)

// HasPassingAddrIn reports whether a passing container has an address in
// p: whether the reverse name of p has names below it (an empty
// non-terminal) or is unknown (NXDOMAIN).
func (c *Catalog) HasPassingAddrIn(p netip.Prefix) (bool, error) {
	if !p.IsValid() {
		return false, errors.New("has address in: invalid prefix")
	}
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	p = p.Masked()
	if !p.IsValid() {
		return false, errors.New("has address in: an IPv4-mapped prefix shorter than /96")
	}
	it, err := c.db.Txn(false).Get(tableContainers, indexAddr+"_prefix", p)
	if err != nil {
		return false, err
	}
	for obj := it.Next(); obj != nil; obj = it.Next() {
		ctr := obj.(*containerRow).ctr
		if !ctr.Passing {
			continue
		}
		for _, a := range ctr.Addrs {
			if p.Contains(a.Addr().Unmap()) {
				return true, nil
			}
		}
	}
	return false, nil
}

// PrefixFromArgs makes the address index searchable by prefix: the whole
// bytes of a netip.Prefix's key (a prefix that ends inside a byte gets the
// rows of the whole byte, which the caller filters).
func (addrIndexer) PrefixFromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, errors.New("addr index: want one netip.Prefix")
	}
	p, ok := args[0].(netip.Prefix)
	if !ok {
		return nil, errors.New("addr index: want a netip.Prefix")
	}
	a := p.Addr()
	bits := p.Bits()
	if a.Is4() {
		bits += 96 // the key is the 16-byte (IPv4-mapped) form
	}
	return addrKey(a)[:bits/8], nil
}
