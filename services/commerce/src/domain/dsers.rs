//! DSers has no public API; its users export product lists as CSV. This reads such a file into
//! supplier products (one row per variant), finding columns by their usual header names in any
//! case, and reports every row it cannot use with its line number instead of failing the file.

use std::collections::{BTreeMap, HashMap};

use nexus_kernel::{Currency, Error};
use rust_decimal::Decimal;

use super::catalogue::{SupplierProduct, SupplierVariant};

/// Largest file accepted, and most rows read.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;
pub const MAX_ROWS: usize = 20_000;

const PRODUCT_ID: &[&str] = &["product id", "aliexpress product id", "supplier product id", "ali product id"];
const TITLE: &[&str] = &["product title", "title", "product name"];
const VARIANT_ID: &[&str] = &["variant id", "sku id", "supplier variant id"];
const SKU: &[&str] = &["sku", "variant sku"];
const OPTIONS: &[&str] = &["variant", "variant name", "options", "sku attribute"];
const COST: &[&str] = &["cost", "product cost", "supplier price", "price"];
const CURRENCY: &[&str] = &["currency", "cost currency"];
const STOCK: &[&str] = &["stock", "inventory", "quantity available"];
const IMAGE: &[&str] = &["image", "image url", "product image"];
const CATEGORY: &[&str] = &["category", "product type"];

/// A row that was not used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: u64,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub products: Vec<SupplierProduct>,
    pub rows: u64,
    pub errors: Vec<RowError>,
}

/// Why a whole file is refused.
fn bad_file(why: &str) -> Error {
    Error::invalid("commerce.dsers_file_invalid").with_param("detail", why.to_owned())
}

/// A DSers export opened: its lower-cased headers and its data rows, each with the line a
/// spreadsheet shows it on (the header is line 1). A file over [`MAX_BYTES`], not UTF-8 or
/// without a header row is refused; an unreadable row, or the first past [`MAX_ROWS`] (reading
/// stops there), is reported instead of returned.
struct Export {
    headers: Vec<String>,
    records: Vec<(u64, csv::StringRecord)>,
    /// Data rows read, the one past the limit included.
    rows: u64,
    errors: Vec<RowError>,
}

impl Export {
    fn open(bytes: &[u8]) -> Result<Export, Error> {
        if bytes.len() > MAX_BYTES {
            return Err(bad_file("the file is larger than 5 MiB"));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| bad_file("the file is not UTF-8 text"))?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let headers =
            reader.headers().map_err(|_| bad_file("no header row"))?.iter().map(|h| h.trim().to_lowercase()).collect();
        let (mut records, mut errors, mut rows) = (Vec::new(), Vec::new(), 0u64);
        for record in reader.records() {
            rows += 1;
            let line = rows + 1;
            if rows as usize > MAX_ROWS {
                errors.push(RowError { line, reason: format!("more than {MAX_ROWS} rows; the rest was not read") });
                break;
            }
            match record {
                Ok(r) => records.push((line, r)),
                Err(_) => errors.push(RowError { line, reason: "unreadable row".into() }),
            }
        }
        Ok(Export { headers, records, rows, errors })
    }
}

/// Reads a DSers product export. A file without the product id, title or cost columns, or
/// larger than [`MAX_BYTES`], is refused as a whole.
pub fn parse_products(bytes: &[u8]) -> Result<Parsed, Error> {
    let Export { headers, records, rows, mut errors } = Export::open(bytes)?;
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let (Some(pid), Some(title), Some(cost)) = (col(PRODUCT_ID), col(TITLE), col(COST)) else {
        return Err(bad_file("the product id, title and cost columns are required"));
    };
    let (vid, sku, options, currency, stock, image, category) =
        (col(VARIANT_ID), col(SKU), col(OPTIONS), col(CURRENCY), col(STOCK), col(IMAGE), col(CATEGORY));
    let mut products: Vec<SupplierProduct> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (line, record) in records {
        let get = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::trim).unwrap_or_default();
        let product_id = get(Some(pid));
        let name = get(Some(title));
        if product_id.is_empty()
            || product_id.len() > 100
            || name.is_empty()
            || product_id.chars().any(char::is_control)
        {
            errors.push(RowError { line, reason: "missing product id or title".into() });
            continue;
        }
        let raw_cost = get(Some(cost)).trim_start_matches(['$', '€', '£']);
        let Some(cost_value) = raw_cost
            .parse::<Decimal>()
            .ok()
            .filter(|c| !c.is_sign_negative() && *c <= super::money::max_value() && c.scale() <= 4)
        else {
            errors.push(RowError { line, reason: format!("cost {raw_cost:?} is not an amount") });
            continue;
        };
        let cur = match get(currency) {
            "" => Currency::USD,
            c => match c.to_uppercase().parse::<Currency>() {
                Ok(c) => c,
                Err(_) => {
                    errors.push(RowError { line, reason: format!("currency {c:?} is not supported") });
                    continue;
                }
            },
        };
        let stock_value = match get(stock) {
            "" => 0,
            s => match s.parse::<i64>() {
                Ok(n) if n >= 0 => i32::try_from(n).unwrap_or(i32::MAX),
                _ => {
                    errors.push(RowError { line, reason: format!("stock {s:?} is not a count") });
                    continue;
                }
            },
        };
        let variant_id = match get(vid) {
            "" => format!("{product_id}-{line}"),
            v => v.to_owned(),
        };
        let option_map: BTreeMap<String, String> = match get(options) {
            "" => BTreeMap::new(),
            o => o
                .split([';', '/'])
                .filter(|p| !p.trim().is_empty())
                .enumerate()
                .map(|(i, p)| match p.split_once([':', '=']) {
                    Some((k, v)) => (k.trim().to_owned(), v.trim().to_owned()),
                    None => (format!("Option{}", i + 1), p.trim().to_owned()),
                })
                .collect(),
        };
        let variant = SupplierVariant {
            supplier_variant_id: variant_id.clone(),
            sku: match get(sku) {
                "" => format!("DS-{variant_id}"),
                s => s.chars().take(100).collect(),
            },
            options: option_map,
            cost: cost_value,
            currency: cur,
            stock: stock_value,
        };
        let at = *index.entry(product_id.to_owned()).or_insert_with(|| {
            products.push(SupplierProduct {
                supplier_product_id: product_id.to_owned(),
                title: name.chars().take(500).collect(),
                description: String::new(),
                category: get(category).chars().take(200).collect(),
                images: Vec::new(),
                ship_from: String::new(),
                variants: Vec::new(),
            });
            products.len() - 1
        });
        let p = &mut products[at];
        let img = get(image);
        if !img.is_empty() && img.starts_with("https://") && !p.images.iter().any(|i| i == img) && p.images.len() < 20 {
            p.images.push(img.to_owned());
        }
        if p.variants.iter().any(|v| v.supplier_variant_id == variant_id) {
            errors.push(RowError { line, reason: format!("variant {variant_id} appears twice") });
            continue;
        }
        p.variants.push(variant);
    }
    errors.sort_by_key(|e| e.line);
    Ok(Parsed { products, rows, errors })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_product_export_and_reports_bad_rows() {
        let csv = "\u{feff}Product ID,Product Title,Variant ID,SKU,Variant,Cost,Currency,Stock,Image URL\n\
                   1005001,Ceramic Mug,11,MUG-BLK,Color:Black,3.10,USD,40,https://ae.example/1.jpg\n\
                   1005001,Ceramic Mug,12,MUG-WHT,Color:White,3.25,USD,0,https://ae.example/2.jpg\n\
                   1005002,\"Desk Lamp, LED\",21,LAMP-1,,$12.00,EUR,5,\n\
                   1005003,Bad Cost,31,X,,twelve,USD,1,\n\
                   1005004,Bad Currency,41,Y,,1.00,DOGE,1,\n\
                   ,No Id,51,Z,,1.00,USD,1,\n\
                   1005001,Ceramic Mug,11,MUG-BLK,Color:Black,3.10,USD,40,\n";
        let p = parse_products(csv.as_bytes()).unwrap();
        assert_eq!(p.rows, 7);
        assert_eq!(p.products.len(), 2);
        let mug = &p.products[0];
        assert_eq!(mug.variants.len(), 2);
        assert_eq!(mug.variants[1].options["Color"], "White");
        assert_eq!(mug.images.len(), 2);
        assert_eq!(p.products[1].title, "Desk Lamp, LED");
        assert_eq!(p.products[1].variants[0].currency, Currency::EUR);
        assert_eq!(p.products[1].variants[0].cost, "12.00".parse().unwrap());
        let lines: Vec<u64> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [5, 6, 7, 8]);
    }

    #[test]
    fn refuses_a_file_without_the_needed_columns() {
        assert_eq!(parse_products(b"Name,Price\nMug,1\n").unwrap_err().code(), "commerce.dsers_file_invalid");
        assert!(parse_products(&[0xff, 0xfe, 0x00]).is_err());
        assert!(parse_products(&vec![b'a'; MAX_BYTES + 1]).is_err());
    }
}

const ORDER_NUMBER: &[&str] =
    &["order number", "order no.", "order no", "order id", "store order number", "order name"];
const ORDER_DATE: &[&str] = &["order date", "date", "created at", "order time"];
const CUSTOMER: &[&str] = &["customer name", "contact name", "buyer name", "name", "shipping name"];
const EMAIL: &[&str] = &["email", "customer email", "contact email"];
const PHONE: &[&str] = &["phone", "phone number", "contact phone", "shipping phone"];
const ADDRESS1: &[&str] = &["address", "address 1", "address1", "shipping address"];
const ADDRESS2: &[&str] = &["address 2", "address2", "apartment"];
const CITY: &[&str] = &["city", "shipping city"];
const PROVINCE: &[&str] = &["province", "state", "region"];
const ZIP: &[&str] = &["zip", "zip code", "postal code", "postcode"];
const COUNTRY: &[&str] = &["country code", "country"];
const ITEM_TITLE: &[&str] = &["product title", "item title", "product name", "title"];
const QUANTITY: &[&str] = &["quantity", "qty"];
const PRICE: &[&str] = &["price", "unit price", "item price", "sale price"];
const SHIPPING: &[&str] = &["shipping", "shipping cost", "shipping price"];
const PAYMENT: &[&str] = &["payment status", "financial status", "order status"];

/// An order of a DSers order export: its rows grouped by order number.
#[derive(Debug, Clone, PartialEq)]
pub struct DsersOrder {
    pub number: String,
    /// The line of its first row.
    pub line: u64,
    pub currency: Currency,
    pub customer: super::orders::Customer,
    pub lines: Vec<super::orders::Line>,
    pub shipping: Decimal,
    pub paid: bool,
    pub ordered_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ParsedOrders {
    pub orders: Vec<DsersOrder>,
    pub rows: u64,
    pub errors: Vec<RowError>,
}

fn clip(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

fn order_date(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Some(Utc.from_utc_datetime(&t));
        }
    }
    ["%Y-%m-%d", "%Y/%m/%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(s, f).ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0).map(|t| Utc.from_utc_datetime(&t)))
}

/// Reads a DSers order export: one row per order line, rows grouped into orders by order number
/// (the buyer and shipping from the order's first row). A file without the order number,
/// quantity and price columns, or larger than [`MAX_BYTES`], is refused as a whole; a row that
/// cannot be used is reported with its line, and an order with any such row is left out whole
/// (half an order would be a wrong sale).
pub fn parse_orders(bytes: &[u8]) -> Result<ParsedOrders, Error> {
    let Export { headers, records, rows, mut errors } = Export::open(bytes)?;
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let (Some(number_col), Some(qty_col), Some(price_col)) = (col(ORDER_NUMBER), col(QUANTITY), col(PRICE)) else {
        return Err(bad_file("the order number, quantity and price columns are required"));
    };
    let cols = [
        col(ORDER_DATE),
        col(CUSTOMER),
        col(EMAIL),
        col(PHONE),
        col(ADDRESS1),
        col(ADDRESS2),
        col(CITY),
        col(PROVINCE),
        col(ZIP),
        col(COUNTRY),
        col(ITEM_TITLE),
        col(SKU),
        col(CURRENCY),
        col(SHIPPING),
        col(PAYMENT),
        col(OPTIONS),
    ];
    let [
        date,
        customer,
        email,
        phone,
        a1,
        a2,
        city,
        province,
        zip,
        country,
        title,
        sku,
        currency,
        shipping,
        payment,
        options,
    ] = cols;
    let mut orders: Vec<DsersOrder> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut broken: std::collections::HashSet<String> = std::collections::HashSet::new();
    for (line, record) in records {
        let get = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::trim).unwrap_or_default();
        let number = get(Some(number_col));
        if number.is_empty() || number.len() > 100 || number.chars().any(char::is_control) {
            errors.push(RowError { line, reason: "missing order number".into() });
            continue;
        }
        let mut fail = |reason: String| {
            errors.push(RowError { line, reason: format!("order {number}: {reason}") });
            broken.insert(number.to_owned());
        };
        let cur = match get(currency) {
            "" => Currency::USD,
            c => match c.to_uppercase().parse::<Currency>() {
                Ok(c) => c,
                Err(_) => {
                    fail(format!("currency {c:?} is not supported"));
                    continue;
                }
            },
        };
        let amount = |raw: &str| {
            let raw = raw.trim_start_matches(['$', '€', '£']);
            raw.parse::<Decimal>().ok().filter(|v| {
                !v.is_sign_negative() && *v <= super::money::max_value() && v.scale() <= u32::from(cur.minor_digits())
            })
        };
        let Some(price) = amount(get(Some(price_col))) else {
            fail(format!("price {:?} is not an amount", get(Some(price_col))));
            continue;
        };
        let quantity = match get(Some(qty_col)).parse::<u32>() {
            Ok(q) if (1..=10_000).contains(&q) => q,
            _ => {
                fail(format!("quantity {:?} is not a count from 1 to 10000", get(Some(qty_col))));
                continue;
            }
        };
        let ship = match get(shipping) {
            "" => Decimal::ZERO,
            s => match amount(s) {
                Some(v) => v,
                None => {
                    fail(format!("shipping {s:?} is not an amount"));
                    continue;
                }
            },
        };
        let (item_sku, item_title) = (clip(get(sku), 100), clip(get(title), 500));
        if item_sku.is_empty() && item_title.is_empty() {
            fail("a line needs a SKU or a title".into());
            continue;
        }
        let opts = clip(get(options), 200);
        let line_item = super::orders::Line {
            variant_id: None,
            sku: item_sku,
            quantity,
            price,
            title: if opts.is_empty() { item_title } else { format!("{item_title} ({opts})") },
            vendor: String::new(),
            store_line_id: String::new(),
        };
        if let Some(&at) = index.get(number) {
            let o = &mut orders[at];
            if o.currency != cur {
                fail(format!("currency {} differs from the order's {}", cur.code(), o.currency.code()));
                continue;
            }
            if o.lines.len() >= 100 {
                fail("more than 100 lines".into());
                continue;
            }
            o.shipping = o.shipping.max(ship);
            o.lines.push(line_item);
            continue;
        }
        let mail = get(email).to_lowercase();
        let country_code = get(country).to_uppercase();
        let status = get(payment).to_lowercase();
        index.insert(number.to_owned(), orders.len());
        orders.push(DsersOrder {
            number: number.to_owned(),
            line,
            currency: cur,
            customer: super::orders::Customer {
                name: clip(get(customer), 200),
                email: if mail.len() <= 254 && mail.contains('@') && !mail.contains(char::is_whitespace) {
                    clip(&mail, 254)
                } else {
                    String::new()
                },
                phone: clip(get(phone), 32),
                address1: clip(get(a1), 300),
                address2: clip(get(a2), 300),
                city: clip(get(city), 100),
                province: clip(get(province), 100),
                zip: clip(get(zip), 20),
                country_code: if country_code.len() == 2 && country_code.bytes().all(|b| b.is_ascii_uppercase()) {
                    country_code
                } else {
                    String::new()
                },
            },
            lines: vec![line_item],
            shipping: ship,
            // An export lists orders the store took; only an explicit unpaid status says otherwise.
            paid: !matches!(status.as_str(), "pending" | "unpaid" | "awaiting payment" | "authorized"),
            ordered_at: order_date(get(date)),
        });
    }
    orders.retain(|o| !broken.contains(&o.number));
    errors.sort_by_key(|e| e.line);
    Ok(ParsedOrders { orders, rows, errors })
}

#[cfg(test)]
mod order_tests {
    use super::*;

    const EXPORT: &str = "\u{feff}Order No.,Order Date,Customer Name,Email,Phone,Country,Product Title,SKU,Variant,Quantity,Price,Currency,Shipping Cost\n\
        #1001,2026-11-02 10:00:00,Ana Silva,Ana@Example.com,+5511987654321,BR,Ceramic Mug,MUG-BLK,Black,2,9.90,USD,3.00\n\
        #1001,2026-11-02 10:00:00,Ana Silva,Ana@Example.com,+5511987654321,BR,Desk Lamp,LAMP-1,,1,25.00,USD,3.00\n\
        #1002,2026-11-03,Bo Lee,not-an-email,,us,Ceramic Mug,MUG-WHT,White,1,9.90,EUR,\n\
        #1003,2026-11-03,Cy,,,,Mug,MUG-BLK,,two,9.90,USD,\n\
        #1003,2026-11-03,Cy,,,,Mug,MUG-BLK,,1,9.90,USD,\n\
        #1004,2026-11-03,Di,,,,Mug,MUG-BLK,,1,9.90,USD,\n\
        #1004,2026-11-03,Di,,,,Mug,MUG-BLK,,1,9.90,EUR,\n\
        ,2026-11-03,Nobody,,,,Mug,MUG-BLK,,1,9.90,USD,\n\
        #1005,2026-11-03,Ed,,,,,,,1,9.90,USD,\n";

    #[test]
    fn rows_are_grouped_into_orders_and_bad_rows_reported_by_line() {
        let p = parse_orders(EXPORT.as_bytes()).unwrap();
        assert_eq!(p.rows, 9);
        let numbers: Vec<&str> = p.orders.iter().map(|o| o.number.as_str()).collect();
        assert_eq!(numbers, ["#1001", "#1002"]);
        let first = &p.orders[0];
        assert_eq!(first.lines.len(), 2);
        assert_eq!((first.lines[0].quantity, first.lines[0].price), (2, "9.90".parse().unwrap()));
        assert_eq!(first.lines[0].title, "Ceramic Mug (Black)");
        assert_eq!(first.shipping, "3.00".parse::<Decimal>().unwrap());
        assert_eq!(first.customer.email, "ana@example.com");
        assert_eq!(first.customer.country_code, "BR");
        assert!(first.paid);
        assert_eq!(first.ordered_at.unwrap().to_rfc3339(), "2026-11-02T10:00:00+00:00");
        let second = &p.orders[1];
        assert_eq!(
            (second.currency, second.customer.email.as_str(), second.customer.country_code.as_str()),
            (Currency::EUR, "", "US")
        );
        // Line 5: #1003's bad quantity (the whole order is left out); 8: #1004's second
        // currency (left out too); 9: no order number; 10: a line without SKU or title.
        let lines: Vec<u64> = p.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [5, 8, 9, 10]);
    }

    #[test]
    fn refuses_a_file_without_the_needed_columns() {
        assert_eq!(parse_orders(b"Name,Price\nMug,1\n").unwrap_err().code(), "commerce.dsers_file_invalid");
        assert!(parse_orders(&[0xff, 0xfe, 0x00]).is_err());
        assert!(parse_orders(&vec![b'a'; MAX_BYTES + 1]).is_err());
    }
}
