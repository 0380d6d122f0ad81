# Chrome of published landing pages (the page's own text comes from its sections).
page-skip = Skip to content
page-benefits = Why choose us
page-social_proof = What our customers say
page-faq = Frequently asked questions
page-form-heading = Get in touch
page-form-name = Your name
page-form-email = Email address
page-form-phone = Phone number
page-form-message = Message
page-form-submit = Send
page-form-consent = I agree to be contacted about my request.
page-form-required = Fields marked * are required.
page-form-honeypot = Leave this field empty
page-form-thanks = Thank you! We received your details and will get back to you soon.
page-footer = © { $title }. All rights reserved.
page-image-alt = Illustration for { $title }
