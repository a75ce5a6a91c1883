package catalog

import (
	"context"
	"fmt"
	"time"
)

// ExpireInstances removes every instance whose expiry is at or before now,
// with its container row, in one transaction, and returns their ids.
func (c *Catalog) ExpireInstances(now time.Time) ([]string, uint64, error) {
	var expired []string
	idx, err := c.write(func(w *writeTxn) error {
		expired = expired[:0]
		it, err := w.tx.LowerBound(tableContainers, indexExpires, time.Unix(0, 0))
		if err != nil {
			return fmt.Errorf("list expiring instances: %w", err)
		}
		var due []*containerRow
		for obj := it.Next(); obj != nil; obj = it.Next() {
			r := obj.(*containerRow)
			if r.firstExpiry().After(now) {
				break
			}
			due = append(due, r)
		}
		for _, r := range due {
			if _, err := w.deleteContainer(r.ctr.ID); err != nil {
				return err
			}
			for _, inst := range r.insts {
				expired = append(expired, inst.ID)
			}
		}
		return nil
	})
	return expired, idx, err
}

// RunExpiry removes expired instances every interval until ctx is done.
// onExpire, if not nil, is called with the ids removed by each pass.
func (c *Catalog) RunExpiry(ctx context.Context, interval time.Duration, onExpire func([]string)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			ids, _, err := c.ExpireInstances(now)
			if err != nil {
				return fmt.Errorf("expire instances: %w", err)
			}
			if len(ids) > 0 && onExpire != nil {
				onExpire(ids)
			}
		}
	}
}
