//! Supplier catalogue items, imported products and their variants, and the sample catalogue
//! shipped for local mode.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use nexus_kernel::{Currency, Error};
use rust_decimal::Decimal;
use uuid::Uuid;

/// A search hit in a supplier's catalogue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogueItem {
    pub supplier_product_id: String,
    pub title: String,
    pub category: String,
    pub image: String,
    pub price: Decimal,
    pub currency: Currency,
    pub ship_from: String,
    pub variants: u32,
}

/// Search criteria, checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Search {
    pub keyword: String,
    pub category: String,
    pub min_price: Option<Decimal>,
    pub max_price: Option<Decimal>,
    pub ship_from: String,
    pub page: u32,
    pub page_size: u32,
}

impl Search {
    pub fn parse(
        keyword: &str,
        category: &str,
        min: &str,
        max: &str,
        ship_from: &str,
        page: u32,
        page_size: u32,
    ) -> Result<Search, Error> {
        let text = |s: &str, field: &str| {
            let s = s.trim();
            if s.chars().count() > 200 || s.chars().any(char::is_control) {
                Err(Error::invalid("commerce.search_invalid")
                    .with_param("field", field)
                    .with_violation(field, "invalid"))
            } else {
                Ok(s.to_owned())
            }
        };
        let price = |s: &str, field: &str| -> Result<Option<Decimal>, Error> {
            let s = s.trim();
            if s.is_empty() {
                return Ok(None);
            }
            let bad = || {
                Error::invalid("commerce.search_invalid").with_param("field", field).with_violation(field, "invalid")
            };
            if !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') || s.len() > 20 {
                return Err(bad());
            }
            s.parse::<Decimal>().map(Some).map_err(|_| bad())
        };
        let ship_from = text(ship_from, "ship_from")?.to_ascii_uppercase();
        if !ship_from.is_empty() && (ship_from.len() != 2 || !ship_from.bytes().all(|b| b.is_ascii_uppercase())) {
            return Err(Error::invalid("commerce.search_invalid")
                .with_param("field", "ship_from")
                .with_violation("ship_from", "invalid"));
        }
        let s = Search {
            keyword: text(keyword, "keyword")?,
            category: text(category, "category")?,
            min_price: price(min, "min_price")?,
            max_price: price(max, "max_price")?,
            ship_from,
            page: page.max(1),
            page_size: if page_size == 0 { 20 } else { page_size.min(100) },
        };
        if page > 10_000 {
            return Err(Error::invalid("commerce.search_invalid")
                .with_param("field", "page")
                .with_violation("page", "invalid"));
        }
        if let (Some(a), Some(b)) = (s.min_price, s.max_price)
            && a > b
        {
            return Err(Error::invalid("commerce.search_invalid")
                .with_param("field", "max_price")
                .with_violation("max_price", "invalid"));
        }
        Ok(s)
    }
}

/// A supplier product with its variants, as fetched for import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierProduct {
    pub supplier_product_id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub images: Vec<String>,
    pub ship_from: String,
    pub variants: Vec<SupplierVariant>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupplierVariant {
    pub supplier_variant_id: String,
    pub sku: String,
    pub options: BTreeMap<String, String>,
    pub cost: Decimal,
    pub currency: Currency,
    pub stock: i32,
}

/// An imported product.
#[derive(Debug, Clone, PartialEq)]
pub struct Product {
    pub id: Uuid,
    pub connection_id: Uuid,
    pub supplier: String,
    pub supplier_product_id: String,
    pub title: String,
    pub description: String,
    pub category: String,
    pub images: Vec<String>,
    pub status: String,
    pub store_product_id: Option<String>,
    pub variants: Vec<Variant>,
    /// The title and description in the store's other languages.
    pub translations: Vec<ProductText>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A product's title and description in one language, and who wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProductText {
    pub language: nexus_kernel::Locale,
    pub title: String,
    pub description: String,
    pub provider: String,
    pub model: String,
    pub updated_at: DateTime<Utc>,
}

/// The languages a request names: each one of the five product locales, once.
pub fn languages(raw: &[String]) -> Result<Vec<nexus_kernel::Locale>, nexus_kernel::Error> {
    let bad = || {
        nexus_kernel::Error::invalid("commerce.language_invalid")
            .with_param("languages", "en, es, pt, he, ar")
            .with_violation("languages", "invalid")
    };
    let mut out: Vec<nexus_kernel::Locale> = Vec::with_capacity(raw.len());
    for r in raw {
        let l: nexus_kernel::Locale = r.trim().parse().map_err(|_| bad())?;
        if out.contains(&l) {
            return Err(bad());
        }
        out.push(l);
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub id: Uuid,
    pub supplier_variant_id: String,
    pub sku: String,
    pub options: BTreeMap<String, String>,
    pub cost: Decimal,
    pub cost_currency: Currency,
    pub price: Decimal,
    pub compare_at: Option<Decimal>,
    pub price_currency: Currency,
    pub rate: Decimal,
    pub rate_day: NaiveDate,
    pub rate_source: String,
    pub stock: i32,
    pub store_variant_id: Option<String>,
}

/// The sample supplier catalogue (`data/catalogue.csv`): one row per variant.
#[derive(Debug, Clone, Default)]
pub struct LocalCatalogue {
    pub products: Vec<SupplierProduct>,
}

impl LocalCatalogue {
    pub fn parse(text: &str) -> Result<LocalCatalogue, String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut products: Vec<SupplierProduct> = Vec::new();
        for (n, row) in reader.records().enumerate() {
            let row = row.map_err(|e| format!("row {}: {e}", n + 2))?;
            let get = |i: usize| row.get(i).unwrap_or_default().to_owned();
            let currency: Currency = get(3).parse().map_err(|_| format!("row {}: currency", n + 2))?;
            let cost: Decimal = get(9).parse().map_err(|_| format!("row {}: cost", n + 2))?;
            let stock: i32 = get(10).parse().map_err(|_| format!("row {}: stock", n + 2))?;
            let options = get(8)
                .split(';')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
            let variant = SupplierVariant { supplier_variant_id: get(6), sku: get(7), options, cost, currency, stock };
            match products.last_mut() {
                Some(p) if p.supplier_product_id == get(0) => p.variants.push(variant),
                _ => products.push(SupplierProduct {
                    supplier_product_id: get(0),
                    title: get(1),
                    description: format!("{} from the NexusOne sample catalogue.", get(1)),
                    category: get(2),
                    images: vec![get(5)],
                    ship_from: get(4),
                    variants: vec![variant],
                }),
            }
        }
        Ok(LocalCatalogue { products })
    }

    pub fn search(&self, s: &Search) -> Vec<CatalogueItem> {
        let keyword = s.keyword.to_lowercase();
        self.products
            .iter()
            .filter(|p| keyword.is_empty() || p.title.to_lowercase().contains(&keyword))
            .filter(|p| s.category.is_empty() || p.category.eq_ignore_ascii_case(&s.category))
            .filter(|p| s.ship_from.is_empty() || p.ship_from == s.ship_from)
            .filter_map(|p| {
                let cheapest = p.variants.iter().min_by_key(|v| v.cost)?;
                let ok =
                    s.min_price.is_none_or(|m| cheapest.cost >= m) && s.max_price.is_none_or(|m| cheapest.cost <= m);
                ok.then(|| CatalogueItem {
                    supplier_product_id: p.supplier_product_id.clone(),
                    title: p.title.clone(),
                    category: p.category.clone(),
                    image: p.images.first().cloned().unwrap_or_default(),
                    price: cheapest.cost,
                    currency: cheapest.currency,
                    ship_from: p.ship_from.clone(),
                    variants: u32::try_from(p.variants.len()).unwrap_or(u32::MAX),
                })
            })
            .skip(((s.page - 1) * s.page_size) as usize)
            .take(s.page_size as usize)
            .collect()
    }

    pub fn product(&self, id: &str) -> Option<&SupplierProduct> {
        self.products.iter().find(|p| p.supplier_product_id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> LocalCatalogue {
        LocalCatalogue::parse(include_str!("../../data/catalogue.csv")).unwrap()
    }

    #[test]
    fn the_shipped_catalogue_has_hundreds_of_products_in_several_currencies() {
        let c = shipped();
        assert!(c.products.len() >= 200, "{}", c.products.len());
        assert!(c.products.iter().any(|p| p.variants.len() > 1));
        let currencies: std::collections::BTreeSet<_> =
            c.products.iter().flat_map(|p| p.variants.iter().map(|v| v.currency.code().to_owned())).collect();
        assert!(currencies.len() >= 3, "{currencies:?}");
        assert!(c.products.iter().all(|p| !p.images.is_empty()));
    }

    #[test]
    fn search_filters_and_pages() {
        let c = shipped();
        let s = Search::parse("mug", "home", "", "", "", 1, 5).unwrap();
        let hits = c.search(&s);
        assert!(!hits.is_empty() && hits.len() <= 5);
        assert!(hits.iter().all(|h| h.title.to_lowercase().contains("mug") && h.category == "Home"));
        let s = Search::parse("", "", "10", "12.50", "DE", 1, 100).unwrap();
        assert!(c.search(&s).iter().all(|h| h.price >= Decimal::from(10) && h.ship_from == "DE"));
        assert!(Search::parse("", "", "5", "4", "", 1, 1).is_err());
        assert!(Search::parse("", "", "-1", "", "", 1, 1).is_err());
        assert!(Search::parse("", "", "", "", "Germany", 1, 1).is_err());
        assert!(Search::parse("a\u{0}", "", "", "", "", 1, 1).is_err());
    }
}
