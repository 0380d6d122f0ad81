//! A published landing page as one complete HTML document: `lang` and `dir` from the page's
//! language, inlined responsive CSS written with logical properties (so right-to-left pages
//! mirror by themselves), landmarks, labelled form fields, and no URL of any other host.

use std::fmt::Write;

use nexus_kernel::Locale;

use super::escape;
use crate::domain::pages::{FormField, Sections};

/// Page chrome in the page's language, from the Fluent bundles.
fn t(l: Locale, id: &str) -> String {
    nexus_i18n::try_message(l, id, &[]).unwrap_or_default()
}

fn t_with(l: Locale, id: &str, args: &[(&str, &str)]) -> String {
    nexus_i18n::try_message(l, id, args).unwrap_or_default()
}

/// Styles of every page. Logical properties only (`margin-inline`, `padding-block`,
/// `text-align: start`), so `dir="rtl"` mirrors the layout with no second stylesheet.
pub const CSS: &str = "\
*,*::before,*::after{box-sizing:border-box}\
html{-webkit-text-size-adjust:100%}\
body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans Hebrew','Noto Sans Arabic',sans-serif;line-height:1.6;color:#1c1f24;background:#fff}\
.skip{position:absolute;inset-inline-start:-999px;inset-block-start:0;padding:.5rem 1rem;background:#1c1f24;color:#fff}\
.skip:focus{inset-inline-start:0}\
.wrap{max-inline-size:68rem;margin-inline:auto;padding-inline:1.25rem}\
header.hero{padding-block:4rem 3rem;background:linear-gradient(135deg,#eef2ff,#fdf2f8)}\
.hero .wrap{display:grid;gap:2rem;align-items:center}\
@media (min-width:48rem){.hero .wrap.has-image{grid-template-columns:1.1fr .9fr}}\
h1{font-size:clamp(2rem,5vw,3.25rem);line-height:1.15;margin-block:0 1rem}\
h2{font-size:clamp(1.5rem,3vw,2rem);margin-block:0 1.5rem}\
h3{font-size:1.15rem;margin-block:0 .5rem}\
p{margin-block:0 1rem}\
.lead{font-size:1.2rem;color:#434955}\
.hero img{inline-size:100%;block-size:auto;border-radius:1rem}\
.button{display:inline-block;padding:.85rem 1.6rem;border-radius:.6rem;background:#4338ca;color:#fff;font-weight:600;text-decoration:none;border:0;font-size:1rem;cursor:pointer}\
.button:hover,.button:focus-visible{background:#3730a3}\
a:focus-visible,button:focus-visible,input:focus-visible,textarea:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}\
section{padding-block:3rem}\
section:nth-of-type(even){background:#f8fafc}\
.grid{display:grid;gap:1.5rem;grid-template-columns:repeat(auto-fit,minmax(15rem,1fr));padding:0;margin:0;list-style:none}\
.card{padding:1.5rem;border-radius:.8rem;background:#fff;box-shadow:0 1px 3px rgba(0,0,0,.08)}\
blockquote{margin:0}\
blockquote p{font-style:italic}\
figcaption{font-weight:600;color:#434955}\
details{border-block-end:1px solid #e2e8f0;padding-block:1rem}\
summary{font-weight:600;cursor:pointer}\
.cta{text-align:center}\
form{display:grid;gap:1rem;max-inline-size:36rem}\
label{font-weight:600;display:block;margin-block-end:.25rem}\
input,textarea{inline-size:100%;padding:.7rem .8rem;border:1px solid #94a3b8;border-radius:.5rem;font:inherit}\
.check{display:flex;gap:.6rem;align-items:flex-start}\
.check input{inline-size:auto;margin-block-start:.35rem}\
.check label{font-weight:400}\
.hp{position:absolute;inset-inline-start:-10000px;inline-size:1px;block-size:1px;overflow:hidden}\
.thanks{padding:1rem;border-radius:.5rem;background:#ecfdf5;color:#065f46;font-weight:600}\
.note{font-size:.9rem;color:#5b6270}\
footer{padding-block:2rem;text-align:center;font-size:.9rem;color:#5b6270}\
@media (prefers-reduced-motion:reduce){*{transition:none!important;animation:none!important}}";

/// What a page needs to be rendered.
pub struct PageView<'a> {
    pub title: &'a str,
    pub language: Locale,
    pub slug: &'a str,
    pub sections: &'a Sections,
    /// Whether the hero image can be served (exists and finished).
    pub hero_image: bool,
    /// Show the thank-you notice (after a lead was sent).
    pub thanks: bool,
}

fn field_label(l: Locale, f: FormField) -> String {
    t(l, &format!("page-form-{}", f.as_str()))
}

pub fn render(v: &PageView<'_>) -> String {
    let l = v.language;
    let s = v.sections;
    let slug = escape(v.slug);
    let mut h = String::with_capacity(16 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"{lang}\" dir=\"{dir}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<meta name=\"description\" content=\"{desc}\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<style>{CSS}</style>\n</head>\n<body>\n\
         <a class=\"skip\" href=\"#main\">{skip}</a>\n",
        lang = l.code(),
        dir = l.direction().as_str(),
        title = escape(v.title),
        desc = escape(&s.hero.subheadline),
        skip = escape(&t(l, "page-skip")),
    );

    // Hero: the page's banner, with its one h1.
    let image = match (&s.hero.image_id, v.hero_image) {
        (Some(id), true) => format!(
            "<img src=\"/p/{slug}/assets/{id}\" alt=\"{alt}\" width=\"1024\" height=\"576\">",
            id = escape(id),
            alt = escape(&t_with(l, "page-image-alt", &[("title", v.title)])),
        ),
        _ => String::new(),
    };
    let _ = write!(
        h,
        "<header class=\"hero\"><div class=\"wrap{cls}\"><div>\n<h1>{headline}</h1>\n<p class=\"lead\">{sub}</p>\n\
         <a class=\"button\" href=\"#lead\">{cta}</a>\n</div>{image}</div></header>\n<main id=\"main\">\n",
        cls = if image.is_empty() { "" } else { " has-image" },
        headline = escape(&s.hero.headline),
        sub = escape(&s.hero.subheadline),
        cta = escape(&s.hero.cta_label),
    );

    let _ = write!(
        h,
        "<section aria-labelledby=\"benefits-h\"><div class=\"wrap\">\n<h2 id=\"benefits-h\">{}</h2>\n<ul class=\"grid\">\n",
        escape(&t(l, "page-benefits"))
    );
    for b in &s.benefits {
        let _ = writeln!(h, "<li class=\"card\"><h3>{}</h3><p>{}</p></li>", escape(&b.title), escape(&b.body));
    }
    h.push_str("</ul>\n</div></section>\n");

    if !s.social_proof.is_empty() {
        let _ = write!(
            h,
            "<section aria-labelledby=\"proof-h\"><div class=\"wrap\">\n<h2 id=\"proof-h\">{}</h2>\n<div class=\"grid\">\n",
            escape(&t(l, "page-social_proof"))
        );
        for q in &s.social_proof {
            let _ = writeln!(
                h,
                "<figure class=\"card\"><blockquote><p>{}</p></blockquote><figcaption>{}</figcaption></figure>",
                escape(&q.quote),
                escape(&q.author)
            );
        }
        h.push_str("</div>\n</div></section>\n");
    }

    if !s.faq.is_empty() {
        let _ = write!(
            h,
            "<section aria-labelledby=\"faq-h\"><div class=\"wrap\">\n<h2 id=\"faq-h\">{}</h2>\n",
            escape(&t(l, "page-faq"))
        );
        for f in &s.faq {
            let _ = writeln!(h, "<details><summary>{}</summary><p>{}</p></details>", escape(&f.q), escape(&f.a));
        }
        h.push_str("</div></section>\n");
    }

    let _ = write!(
        h,
        "<section class=\"cta\" aria-labelledby=\"cta-h\"><div class=\"wrap\">\n<h2 id=\"cta-h\">{}</h2>\n\
         <a class=\"button\" href=\"#lead\">{}</a>\n</div></section>\n",
        escape(&s.cta.headline),
        escape(&s.cta.button)
    );

    // The lead form: posts to this page's own address; the honeypot field is hidden from people
    // (off-screen, aria-hidden, not focusable) but bots fill it.
    let form = &s.lead_form;
    let _ = write!(
        h,
        "<section id=\"lead\" aria-labelledby=\"lead-h\"><div class=\"wrap\">\n<h2 id=\"lead-h\">{}</h2>\n",
        escape(&t(l, "page-form-heading"))
    );
    if v.thanks {
        let _ = writeln!(h, "<p class=\"thanks\" role=\"status\">{}</p>", escape(&t(l, "page-form-thanks")));
    }
    let _ = writeln!(h, "<form method=\"post\" action=\"/p/{slug}/leads\">");
    let _ = writeln!(h, "<p class=\"note\">{}</p>", escape(&t(l, "page-form-required")));
    let contact_required = |f: FormField| match f {
        // Required when it is the only way to reach the person.
        FormField::Email => !form.fields.contains(&FormField::Phone),
        FormField::Phone => !form.fields.contains(&FormField::Email),
        _ => false,
    };
    for f in &form.fields {
        let name = f.as_str();
        let required = contact_required(*f);
        let star = if required { " *" } else { "" };
        let req = if required { " required" } else { "" };
        let label = escape(&field_label(l, *f));
        let control = match f {
            FormField::Name => format!(
                "<input id=\"f-{name}\" name=\"{name}\" type=\"text\" autocomplete=\"name\" maxlength=\"120\"{req}>"
            ),
            FormField::Email => format!(
                "<input id=\"f-{name}\" name=\"{name}\" type=\"email\" autocomplete=\"email\" maxlength=\"254\" dir=\"ltr\"{req}>"
            ),
            FormField::Phone => format!(
                "<input id=\"f-{name}\" name=\"{name}\" type=\"tel\" autocomplete=\"tel\" maxlength=\"32\" dir=\"ltr\"{req}>"
            ),
            FormField::Message => {
                format!("<textarea id=\"f-{name}\" name=\"{name}\" rows=\"4\" maxlength=\"2000\"{req}></textarea>")
            }
        };
        let _ = writeln!(h, "<div><label for=\"f-{name}\">{label}{star}</label>{control}</div>");
    }
    let consent = if form.consent_text.is_empty() { t(l, "page-form-consent") } else { form.consent_text.clone() };
    let _ = writeln!(
        h,
        "<div class=\"check\"><input id=\"f-consent\" name=\"consent\" type=\"checkbox\" value=\"yes\" required>\
         <label for=\"f-consent\">{} *</label></div>",
        escape(&consent)
    );
    let _ = writeln!(
        h,
        "<div class=\"hp\" aria-hidden=\"true\"><label for=\"f-website\">{}</label>\
         <input id=\"f-website\" name=\"website\" type=\"text\" tabindex=\"-1\" autocomplete=\"off\"></div>",
        escape(&t(l, "page-form-honeypot"))
    );
    let _ = writeln!(h, "<div><button class=\"button\" type=\"submit\">{}</button></div>", escape(&form.submit_label));
    h.push_str("</form>\n</div></section>\n</main>\n");
    let _ = write!(
        h,
        "<footer><div class=\"wrap\"><p>{}</p></div></footer>\n</body>\n</html>\n",
        escape(&t_with(l, "page-footer", &[("title", v.title)]))
    );
    h
}
