# Chrome of published landing pages (the page's own text comes from its sections).
page-skip = Saltar al contenido
page-benefits = Por qué elegirnos
page-social_proof = Lo que dicen nuestros clientes
page-faq = Preguntas frecuentes
page-form-heading = Contáctanos
page-form-name = Tu nombre
page-form-email = Correo electrónico
page-form-phone = Teléfono
page-form-message = Mensaje
page-form-submit = Enviar
page-form-consent = Acepto que me contacten sobre mi solicitud.
page-form-required = Los campos marcados con * son obligatorios.
page-form-honeypot = Deja este campo vacío
page-form-thanks = ¡Gracias! Recibimos tus datos y te responderemos pronto.
page-footer = © { $title }. Todos los derechos reservados.
page-image-alt = Ilustración de { $title }
