"""The 32 entidades federativas (INEGI codes) with a few municipalities each.

Municipality names are public geography; the generator never produces a real address
(see ``draws.fictitious_address``). ``population`` is the 2020 census in millions,
rounded, used only to weight where facilities and referrals fall.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class State:
    code: str
    name: str
    long_name: str
    population: float
    municipalities: tuple[str, ...]


STATES: tuple[State, ...] = (
    State("01", "Aguascalientes", "Aguascalientes", 1.43,
          ("Aguascalientes", "Jesús María", "Calvillo", "Rincón de Romos")),
    State("02", "Baja California", "Baja California", 3.77,
          ("Mexicali", "Tijuana", "Ensenada", "Tecate")),
    State("03", "Baja California Sur", "Baja California Sur", 0.80,
          ("La Paz", "Los Cabos", "Comondú", "Mulegé")),
    State("04", "Campeche", "Campeche", 0.93,
          ("Campeche", "Carmen", "Champotón", "Escárcega")),
    State("05", "Coahuila de Zaragoza", "Coahuila", 3.15,
          ("Saltillo", "Torreón", "Monclova", "Piedras Negras")),
    State("06", "Colima", "Colima", 0.73,
          ("Colima", "Manzanillo", "Tecomán", "Villa de Álvarez")),
    State("07", "Chiapas", "Chiapas", 5.54,
          ("Tuxtla Gutiérrez", "Tapachula", "San Cristóbal de las Casas", "Comitán de Domínguez")),
    State("08", "Chihuahua", "Chihuahua", 3.74,
          ("Chihuahua", "Juárez", "Cuauhtémoc", "Delicias")),
    State("09", "Ciudad de México", "la Ciudad de México", 9.21,
          ("Cuauhtémoc", "Iztapalapa", "Gustavo A. Madero", "Coyoacán", "Tlalpan")),
    State("10", "Durango", "Durango", 1.83,
          ("Durango", "Gómez Palacio", "Lerdo", "Santiago Papasquiaro")),
    State("11", "Guanajuato", "Guanajuato", 6.17,
          ("Guanajuato", "León", "Irapuato", "Celaya")),
    State("12", "Guerrero", "Guerrero", 3.54,
          ("Chilpancingo de los Bravo", "Acapulco de Juárez", "Iguala de la Independencia",
           "Zihuatanejo de Azueta")),
    State("13", "Hidalgo", "Hidalgo", 3.08,
          ("Pachuca de Soto", "Tulancingo de Bravo", "Tula de Allende", "Huejutla de Reyes")),
    State("14", "Jalisco", "Jalisco", 8.35,
          ("Guadalajara", "Zapopan", "San Pedro Tlaquepaque", "Puerto Vallarta")),
    State("15", "México", "el Estado de México", 16.99,
          ("Toluca", "Ecatepec de Morelos", "Nezahualcóyotl", "Naucalpan de Juárez")),
    State("16", "Michoacán de Ocampo", "Michoacán", 4.75,
          ("Morelia", "Uruapan", "Zamora", "Lázaro Cárdenas")),
    State("17", "Morelos", "Morelos", 1.97,
          ("Cuernavaca", "Jiutepec", "Cuautla", "Temixco")),
    State("18", "Nayarit", "Nayarit", 1.24,
          ("Tepic", "Bahía de Banderas", "Santiago Ixcuintla", "Compostela")),
    State("19", "Nuevo León", "Nuevo León", 5.78,
          ("Monterrey", "Guadalupe", "San Nicolás de los Garza", "Apodaca")),
    State("20", "Oaxaca", "Oaxaca", 4.13,
          ("Oaxaca de Juárez", "Juchitán de Zaragoza", "Salina Cruz", "San Juan Bautista Tuxtepec")),
    State("21", "Puebla", "Puebla", 6.58,
          ("Puebla", "Tehuacán", "San Martín Texmelucan", "Atlixco")),
    State("22", "Querétaro", "Querétaro", 2.37,
          ("Querétaro", "San Juan del Río", "Corregidora", "El Marqués")),
    State("23", "Quintana Roo", "Quintana Roo", 1.86,
          ("Benito Juárez", "Othón P. Blanco", "Solidaridad", "Cozumel")),
    State("24", "San Luis Potosí", "San Luis Potosí", 2.82,
          ("San Luis Potosí", "Soledad de Graciano Sánchez", "Ciudad Valles", "Matehuala")),
    State("25", "Sinaloa", "Sinaloa", 3.03,
          ("Culiacán", "Mazatlán", "Ahome", "Guasave")),
    State("26", "Sonora", "Sonora", 2.94,
          ("Hermosillo", "Cajeme", "Nogales", "San Luis Río Colorado")),
    State("27", "Tabasco", "Tabasco", 2.40,
          ("Centro", "Cárdenas", "Comalcalco", "Macuspana")),
    State("28", "Tamaulipas", "Tamaulipas", 3.53,
          ("Victoria", "Reynosa", "Matamoros", "Nuevo Laredo", "Tampico")),
    State("29", "Tlaxcala", "Tlaxcala", 1.34,
          ("Tlaxcala", "Apizaco", "Huamantla", "Chiautempan")),
    State("30", "Veracruz de Ignacio de la Llave", "Veracruz", 8.06,
          ("Xalapa", "Veracruz", "Coatzacoalcos", "Córdoba", "Poza Rica de Hidalgo")),
    State("31", "Yucatán", "Yucatán", 2.32,
          ("Mérida", "Kanasín", "Valladolid", "Tizimín")),
    State("32", "Zacatecas", "Zacatecas", 1.62,
          ("Zacatecas", "Fresnillo", "Guadalupe", "Jerez")),
)  # fmt: skip

STATE_BY_CODE: dict[str, State] = {s.code: s for s in STATES}
STATE_CODES: tuple[str, ...] = tuple(s.code for s in STATES)
