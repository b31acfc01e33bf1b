//! What requests cost: S3's request prices, applied to the counts [`crate::counting`] keeps.

use crate::counting::{Op, PriceClass};

/// Dollars per 1,000 requests of each price class. The defaults are S3 Standard's list prices in
/// us-east-1; S3 Express One Zone and other regions differ, so they are settings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RequestPrices {
    pub write_per_1000: f64,
    pub read_per_1000: f64,
}

impl Default for RequestPrices {
    fn default() -> Self {
        Self {
            write_per_1000: 0.005,
            read_per_1000: 0.0004,
        }
    }
}

impl RequestPrices {
    /// The price of one request of kind `op`.
    pub fn of(&self, op: Op) -> f64 {
        match op.price_class() {
            PriceClass::Write => self.write_per_1000 / 1000.0,
            PriceClass::Read => self.read_per_1000 / 1000.0,
            PriceClass::Free => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_follow_the_class() {
        let p = RequestPrices::default();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-15;
        assert!(close(p.of(Op::Put), 0.000005));
        assert!(close(p.of(Op::MultipartPart), 0.000005));
        assert!(close(p.of(Op::RangedGet), 0.0000004));
        assert!(close(p.of(Op::Head), 0.0000004));
        assert_eq!(p.of(Op::Delete), 0.0);
        // 122 PUTs per GiB (the benchmark's figure) cost $0.00061 per GiB.
        assert!((122.0 * p.of(Op::Put) - 0.00061).abs() < 1e-12);
    }
}
